"""The LVS director, the top layer: CLI, watchdog parent, pool logic, IPVS wrapper,
status and metrics. May import every other package; none imports it."""

__version__ = "0.1.0"

# First of all: the start-up module bundle, if one was built for this interpreter
# (director/bundle.py says why, and why it never runs stale code).
from .bundle import install as _install_bundle  # noqa: E402

_install_bundle()
