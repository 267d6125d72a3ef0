"""daemonlib/loop.py: asyncio on the timerfd selector behaves as asyncio (timers in
order and never early, readers, a disarmed timer that wakes nobody), and the timerfd
stays its own."""

from __future__ import annotations

import asyncio
import os

from daemonlib.loop import TimerfdSelector, new_event_loop


def test_timers_fire_in_order_never_early_and_readers_still_work() -> None:
    loop = new_event_loop()
    fired: list[tuple[str, float, float]] = []
    r, w = os.pipe()
    try:
        async def main() -> None:
            got = loop.create_future()
            loop.add_reader(r, lambda: got.set_result(os.read(r, 10)))
            t0 = loop.time()
            for name, delay in (("c", 0.0123), ("a", 0.0021), ("b", 0.0057)):
                loop.call_at(t0 + delay, lambda n=name, d=delay: fired.append(
                    (n, t0 + d, loop.time())))
            loop.call_later(0.003, os.write, w, b"x")
            assert await got == b"x"
            await asyncio.sleep(0.02)
            loop.remove_reader(r)

        loop.run_until_complete(main())
    finally:
        loop.close()
        os.close(r)
        os.close(w)
    assert [n for n, _when, _at in fired] == ["a", "b", "c"]
    assert all(at >= when for _n, when, at in fired)


def test_the_timerfd_never_reaches_asyncio_and_is_closed_with_the_selector() -> None:
    sel = TimerfdSelector()
    tfd = sel._tfd
    assert tfd >= 0
    assert sel.select(0.001) == []  # woken by its own timer: nothing for the caller
    sel._arm(0.0005)
    sel._disarm()  # a timer armed for an earlier deadline ...
    assert sel.select(0.002) == []  # ... is no event when it would have fired
    sel.close()
    try:
        os.fstat(tfd)
    except OSError:
        pass
    else:
        raise AssertionError("the timerfd outlived its selector")
