"""Read a keepalived.conf into the model: the one entry point the rest uses."""

from __future__ import annotations

import gc
import socket
from typing import TYPE_CHECKING

import attrs

from .build import Builder
from .errors import ConfigError, Diagnostics
from .model import Config
from .source import Source
from .tree import TreeBuilder
from .validate import finish, validate

if TYPE_CHECKING:
    import logging


def default_config_id() -> str:
    """keepalived's default: the node name up to the first dot."""
    return socket.gethostname().split(".", 1)[0]


@attrs.frozen
class Loaded:
    config: Config | None
    diags: Diagnostics

    @property
    def ok(self) -> bool:
        return self.config is not None and not self.diags.errors


def load(path: str, config_id: str | None = None, all_config: bool = False,
         check_host: bool = True) -> Loaded:
    """Parse and validate; never raises for bad config, the problems are in `diags`."""
    # The parse makes ~10 objects per config line and no reference cycles: the cyclic
    # collector would only rescan them over and over (a third of the time on 100k lines).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(path, config_id, all_config, check_host)
    finally:
        if was_enabled:
            gc.enable()


def _load(path: str, config_id: str | None, all_config: bool, check_host: bool) -> Loaded:
    diags = Diagnostics()
    source = Source(diags, config_id if config_id is not None else default_config_id(),
                    all_config=all_config)
    builder = Builder(diags)
    # each top-level block built once it is read
    blocks = builder.block_keywords()
    tree = TreeBuilder(diags, builder.add, blocks, builder.leaf_keywords(blocks))
    try:
        source.load(path, tree)
        tree.close()
        cfg = builder.config(source.files)
    except ConfigError as e:
        diags.error(e.pos, e.message)
        return Loaded(None, diags)
    pending = list(cfg.vrrp_instances)
    cfg = finish(attrs.evolve(cfg, vrrp_instances=()), pending, diags)
    cfg = validate(cfg, diags, check_host=check_host)
    return Loaded(cfg, diags)


def reload(path: str, config_id: str | None, all_config: bool,
           log: logging.Logger) -> Config | None:
    """A running daemon's reload: the file read again, its diagnostics logged; None if
    it has errors (the caller keeps its running configuration)."""
    loaded = load(path, config_id=config_id, all_config=all_config)
    for d in loaded.diags.items:
        (log.error if d.severity == "error" else log.warning)("%s", d)
    if not loaded.ok:
        log.error("Configuration has errors: the running configuration is kept")
        return None
    return loaded.config
