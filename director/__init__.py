"""The LVS director, the top layer: CLI, watchdog parent, pool logic, IPVS wrapper,
status and metrics. May import every other package; none imports it."""

__version__ = "0.1.0"
