"""conf.model.maker: the parser's fast constructor makes the very object attrs' would."""

from __future__ import annotations

import attrs
import pytest

from conf.errors import Pos
from conf.model import Checker, RealServer, Url, dict_maker, maker

CASES = [
    (RealServer, {"address": "10.0.0.1", "port": 80, "weight": 3, "pos": Pos("a.conf", 7),
                  "checkers": (Checker(type="TCP_CHECK"),)}),
    (RealServer, {"address": "fd00::1"}),
    (Checker, {"type": "HTTP_GET", "urls": (Url(path="/x", status_code=((200, 204),)),),
               "retry": 0, "delay_before_retry": 3.0, "require_reply": b"\x00"}),
    (Url, {"path": "/health", "digest": "0" * 32}),
]


@pytest.mark.parametrize(("cls", "kw"), CASES)
def test_same_object_as_attrs_makes(cls, kw):
    fast, slow = maker(cls)(**kw), cls(**kw)
    assert type(fast) is cls
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert attrs.asdict(fast) == attrs.asdict(slow)
    assert attrs.evolve(fast, pos=Pos("b.conf", 1)) == attrs.evolve(slow, pos=Pos("b.conf", 1))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.pos = Pos("c.conf", 2)


def test_defaults_and_wrong_arguments():
    make = maker(RealServer)
    assert make(address="10.0.0.1") == RealServer(address="10.0.0.1")
    with pytest.raises(TypeError):
        make()  # address is required, as attrs' __init__ says
    with pytest.raises(TypeError):
        make(address="10.0.0.1", colour="red")
    with pytest.raises(TypeError):
        make("10.0.0.1")  # keyword-only, as the model


def test_refuses_a_field_it_cannot_copy():
    @attrs.frozen(kw_only=True, weakref_slot=False)
    class WithFactory:
        items: list[int] = attrs.field(factory=list)

    with pytest.raises(TypeError, match="not plain"):
        maker(WithFactory)


@pytest.mark.parametrize(("cls", "kw"), CASES)
def test_dict_maker_same_object_before_and_after_its_shape_code(cls, kw):
    make = dict_maker(cls, after=2)
    made = [make(dict(kw)) for _ in range(5)]  # keyword calls, then the shape's own code
    for fast in made:
        assert type(fast) is cls and fast == cls(**kw) and repr(fast) == repr(cls(**kw))
        assert hash(fast) == hash(cls(**kw))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            fast.pos = Pos("c.conf", 2)


def test_dict_maker_wrong_fields_still_refused():
    make = dict_maker(RealServer, after=1)
    for _ in range(3):
        with pytest.raises(TypeError):
            make({"port": 80})  # address is required
        with pytest.raises(TypeError):
            make({"address": "10.0.0.1", "colour": "red"})
    assert make({"address": "10.0.0.1"}) == RealServer(address="10.0.0.1")
