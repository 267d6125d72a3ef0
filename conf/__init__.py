"""The keepalived.conf language: preprocessor, block parser, attrs model, validation.
The bottom layer: imports only the standard library and its own dependencies."""

from .errors import Diagnostic, Diagnostics, Pos
from .load import Loaded, default_config_id, load
from .model import Config

__all__ = ["Config", "Diagnostic", "Diagnostics", "Loaded", "Pos", "default_config_id", "load"]
