"""The LVS director: CLI, watchdog parent, pool logic, IPVS wrapper, status."""

__version__ = "0.1.0"
