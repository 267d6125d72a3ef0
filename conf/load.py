"""Read a keepalived.conf into the model: the one entry point the rest uses."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

import attrs

from . import aot
from .build import Builder
from .errors import ConfigError, Diagnostics
from .model import Config
from .source import Source
from .tree import Node, TreeBuilder
from .validate import finish, validate

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any


def default_config_id() -> str:
    """keepalived's default: the node name up to the first dot."""
    return os.uname().nodename.split(".", 1)[0]  # gethostname(), without socket.py


@attrs.frozen
class Loaded:
    config: Config | None
    diags: Diagnostics

    @property
    def ok(self) -> bool:
        return self.config is not None and not self.diags.errors


def load(path: str, config_id: str | None = None, all_config: bool = False,
         check_host: bool = True, seed: bool = False) -> Loaded:
    """Parse and validate; never raises for bad config, the problems are in `diags`.
    `seed` (a daemon's start): note where each block is, so that the checker child's
    first reload can read again only what changed (conf/incremental.py)."""
    # The parse makes ~10 objects per config line and no reference cycles: the cyclic
    # collector would only rescan them over and over (a third of the time on 100k lines).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(path, config_id, all_config, check_host, seed)
    finally:
        if was_enabled:
            # what the parse left (the model) aged at once, as freeze/unfreeze does in
            # O(1): else the young generation's next pass walks all of it (~50 ms at
            # 10,000 real servers), in the middle of whatever runs next
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _load(path: str, config_id: str | None, all_config: bool, check_host: bool,
          seed: bool = False, keep: Callable[[Any], None] | None = None) -> Loaded:
    """`keep`: where the seed goes (conf/incremental.py's own full reads); else it is
    the process's seed."""
    diags = Diagnostics()
    cid = config_id if config_id is not None else default_config_id()
    builder = Builder(diags)
    add: Callable[[Node], object] = builder.add
    if seed:
        from .incremental import Recorder

        rec = Recorder(path, cid, all_config, check_host, builder)
        source: Source = rec.source(diags, cid, all_config)
        add = rec.add
    else:
        source = Source(diags, cid, all_config=all_config)
    # each top-level block built once it is read
    blocks = builder.block_keywords()
    tree = TreeBuilder(diags, add, blocks, builder.leaf_keywords(blocks))
    try:
        source.load(path, tree)
        tree.close()
        cfg = builder.config(source.files)
    except ConfigError as e:
        diags.error(e.pos, e.message)
        return Loaded(None, diags)
    loaded = _finish_config(cfg, diags, check_host)
    if seed:
        from .incremental import set_seed

        try:
            noted = rec.done(loaded)
        except Exception:  # a bug in the notes must not cost the load: no seed
            noted = None
        (keep or set_seed)(noted)
    return loaded


def _finish_config(cfg: Config, diags: Diagnostics, check_host: bool,
                   memo: dict[str, Any] | None = None) -> Loaded:
    """The whole-config steps once every block is built (conf/incremental.py too)."""
    pending = list(cfg.vrrp_instances)
    cfg = finish(aot.evolve(cfg, vrrp_instances=()), pending, diags)
    cfg = validate(cfg, diags, check_host=check_host, memo=memo)
    return Loaded(cfg, diags)


def reload(path: str, config_id: str | None, all_config: bool,
           log: logging.Logger, incremental: bool = False) -> Config | None:
    """A running daemon's reload: the file read again, its diagnostics logged; None if
    it has errors (the caller keeps its running configuration). `incremental` (the
    checker child, whose reload of a big LVS config is timed): only the top-level blocks
    that changed since the last load here are read again (conf/incremental.py: the same
    result as reading it all, for the price of keeping the text and the blocks)."""
    if incremental:
        from . import incremental as inc

        loaded = inc.load_incremental(path, config_id=config_id, all_config=all_config)
        if inc.last_mode.startswith("error"):
            log.warning("Reading only the changed blocks failed (%s); the whole file "
                        "was read", inc.last_mode)
    else:
        loaded = load(path, config_id=config_id, all_config=all_config)
    for d in loaded.diags.items:
        (log.error if d.severity == "error" else log.warning)("%s", d)
    if not loaded.ok:
        log.error("Configuration has errors: the running configuration is kept")
        return None
    return loaded.config
