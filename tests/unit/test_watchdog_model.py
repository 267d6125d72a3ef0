"""The watchdog's hold on the parsed config: the first children take the parent's model,
the parent lets go of it, and a child started later reads the file again."""

from __future__ import annotations

import gc

from director.watchdog import _Model


def test_first_child_takes_the_model_later_ones_read_the_file():
    reads = []
    model = _Model("parsed", lambda: reads.append(1) or "read again")
    assert model.take() == "parsed"
    assert model.cfg is None  # the child's own reference is the only one left
    assert model.take() == "read again" and reads == [1]


def test_release_drops_the_parent_reference_and_unfreezes():
    class Cfg:
        pass

    import weakref

    cfg = Cfg()
    ref = weakref.ref(cfg)
    model = _Model(cfg, lambda: None)
    del cfg
    gc.freeze()
    model.release()
    assert gc.get_freeze_count() == 0
    assert ref() is None  # nothing in the parent keeps the model alive
    assert model.take() is None  # a respawn with a broken file gets nothing


def test_only_the_checker_child_keeps_the_reload_seed(tmp_path):
    """conf/incremental.py's seed (the start-up text, for the checker child's first
    reload): a child that does not reload LVS, and the parent once its children run,
    let go of it."""
    from conf import incremental, load

    p = tmp_path / "k.conf"
    p.write_text("virtual_server 10.0.0.1 80 {\n protocol TCP\n"
                 " real_server 10.0.1.1 80 {\n }\n}\n")
    try:
        cfg = load(str(p), check_host=False, seed=True).config
        assert incremental._seed is not None
        assert _Model(cfg, lambda: None).take(seed=True) is cfg
        assert incremental._seed is not None  # the checker child's
        assert _Model(cfg, lambda: None).take() is cfg
        assert incremental._seed is None  # the VRRP child's, or the BGP child's
        load(str(p), check_host=False, seed=True)
        _Model(None, lambda: None).release()
        assert incremental._seed is None  # the parent's, once the children run
    finally:
        incremental.forget()
