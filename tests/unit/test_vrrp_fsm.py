"""The VRRP state machine on a virtual clock: instances joined by a lossless wire."""

from __future__ import annotations

import pytest

from vrrp.fsm import (
    BACKUP,
    FAULT,
    INIT,
    MASTER,
    Enter,
    Instance,
    LowerAdvert,
    Notice,
    Send,
    WantMaster,
    effective_priority,
)


class Wire:
    """Delivers every advert to every other live instance at once; records transitions."""

    def __init__(self, *nodes: Instance) -> None:
        self.nodes = list(nodes)
        self.down: set[str] = set()
        self.now = 0.0
        self.log: list[tuple[float, str, str]] = []
        self.sent: list[tuple[float, str, int]] = []

    def handle(self, node: Instance, actions) -> None:
        for a in actions:
            if isinstance(a, Enter):
                self.log.append((round(self.now, 4), node.name, a.to))
            elif isinstance(a, Send):
                self.sent.append((round(self.now, 4), node.name, a.priority))
                for other in self.nodes:
                    if other is not node and other.name not in self.down:
                        self.handle(other, other.advert(self.now, a.priority, node.primary_ip,
                                                        node.advert_int))

    def start(self, *names: str) -> None:
        for n in self.nodes:
            if not names or n.name in names:
                self.down.discard(n.name)
                self.handle(n, n.start(self.now))

    def kill(self, name: str) -> None:
        """A crash: no priority 0 advert, just silence."""
        self.down.add(name)
        node = self.node(name)
        node.state, node.deadline = INIT, None

    def node(self, name: str) -> Instance:
        return next(n for n in self.nodes if n.name == name)

    def run(self, until: float) -> None:
        while True:
            live = [n for n in self.nodes if n.name not in self.down and n.deadline is not None]
            if not live:
                break
            t = min(n.deadline for n in live)
            if t > until:
                break
            self.now = t
            # timers that expire together fire together, then their adverts cross
            fired = [(n, n.tick(t)) for n in live if n.deadline == t]
            for n, actions in fired:
                self.handle(n, actions)
        self.now = until

    def masters(self) -> list[str]:
        return [n.name for n in self.nodes if n.state == MASTER and n.name not in self.down]

    def became(self, name: str, state: str) -> list[float]:
        return [t for t, n, s in self.log if n == name and s == state]


def node(name, prio, ip, version=2, advert=1.0, **kw):
    return Instance(name=name, version=version, priority=prio, advert_int=advert,
                    primary_ip=ip, **kw)


def test_higher_priority_wins_after_master_down():
    w = Wire(node("a", 100, "10.0.0.1"), node("b", 90, "10.0.0.2"))
    w.start()
    w.run(10)
    assert w.masters() == ["a"]
    # v2: 3 x 1 s + (256 - 100) / 256 s
    assert w.became("a", MASTER) == [pytest.approx(3 + 156 / 256, abs=1e-4)]
    assert w.became("b", MASTER) == []


def test_master_killed_backup_takes_over_after_master_down():
    w = Wire(node("a", 100, "10.0.0.1"), node("b", 90, "10.0.0.2"))
    w.start()
    w.run(10)
    w.kill("a")
    w.run(20)
    assert w.masters() == ["b"]
    (t,) = w.became("b", MASTER)
    # a advertised every second from 3 + 156/256; b takes over 3 + 166/256 s after the last
    last_advert = max(t0 for t0 in [3 + 156 / 256 + k for k in range(10)] if t0 <= 10)
    assert t == pytest.approx(last_advert + 3 + 166 / 256, abs=1e-4)


def test_preemption_and_nopreempt():
    w = Wire(node("a", 100, "10.0.0.1"), node("b", 90, "10.0.0.2"))
    w.start("b")
    w.run(10)
    assert w.masters() == ["b"]
    w.start("a")  # a comes back with the higher priority: preempts
    w.run(20)
    assert w.masters() == ["a"] and w.became("b", BACKUP)[-1] > 10

    w = Wire(node("a", 100, "10.0.0.1", nopreempt=True), node("b", 90, "10.0.0.2"))
    w.start("b")
    w.run(10)
    w.start("a")
    w.run(30)
    assert w.masters() == ["b"]  # a stays backup


def test_preempt_delay():
    w = Wire(node("a", 100, "10.0.0.1", preempt_delay=8), node("b", 90, "10.0.0.2"))
    w.start("b")
    w.run(10)
    w.start("a")
    w.run(30)
    (t,) = w.became("a", MASTER)
    assert 18 <= t <= 18 + 3 + 156 / 256 + 0.01


def test_priority_zero_on_stop_hands_over_after_skew():
    w = Wire(node("a", 100, "10.0.0.1"), node("b", 90, "10.0.0.2"))
    w.start()
    w.run(10)
    w.handle(w.node("a"), w.node("a").stop(w.now))
    w.down.add("a")
    w.run(20)
    (t,) = w.became("b", MASTER)
    assert t == pytest.approx(10 + 166 / 256, abs=1e-4)


def test_equal_priority_higher_ip_wins():
    # both time out together, both become master, the lower address yields
    w = Wire(node("a", 100, "10.0.0.1"), node("b", 100, "10.0.0.2"))
    w.start()
    w.run(10)
    assert w.masters() == ["b"]
    assert w.became("a", MASTER) and w.became("a", BACKUP)[-1] > 0


def test_owner_is_master_at_once():
    w = Wire(node("a", 255, "10.0.0.1"), node("b", 200, "10.0.0.2"))
    w.start()
    assert w.masters() == ["a"] and w.became("a", MASTER) == [0.0]
    w.run(10)
    assert w.masters() == ["a"]


def test_state_master_starts_quickly():
    w = Wire(node("a", 100, "10.0.0.1", want_master=True), node("b", 90, "10.0.0.2"))
    w.start()
    w.run(5)
    assert w.became("a", MASTER) == [1.0]
    # a `state MASTER` with the lower priority still yields to the better peer
    w = Wire(node("a", 90, "10.0.0.1", want_master=True), node("b", 100, "10.0.0.2"))
    w.start()
    w.run(10)
    assert w.masters() == ["b"] and w.became("a", BACKUP)[-1] > 0


def test_v3_fast_adverts_and_interval_adoption():
    w = Wire(node("a", 100, "10.0.0.1", version=3, advert=0.1),
             node("b", 90, "10.0.0.2", version=3, advert=1.0))
    w.start("a")
    w.run(1)
    w.start("b")
    w.run(2)
    assert w.node("b").master_adver_int == 0.1
    w.kill("a")
    w.run(4)
    (t,) = w.became("b", MASTER)
    # v3: 3 x 0.1 + (256 - 90) x 0.1 / 256 after the last advert
    assert t - 2 <= 0.3 + 166 * 0.1 / 256 + 0.1 + 1e-6


def test_tracker_priority_change_moves_the_master():
    w = Wire(node("a", 150, "10.0.0.1"), node("b", 140, "10.0.0.2"))
    w.start()
    w.run(10)
    a = w.node("a")
    w.handle(a, a.set_priority(w.now, effective_priority(150, -50)))
    w.run(20)
    assert w.masters() == ["b"]


def test_fault_and_recovery():
    w = Wire(node("a", 100, "10.0.0.1"), node("b", 90, "10.0.0.2"))
    w.start()
    w.run(10)
    a = w.node("a")
    w.handle(a, a.fault(w.now, True))
    assert a.state == FAULT
    w.run(20)
    assert w.masters() == ["b"]
    w.handle(a, a.fault(w.now, False))
    w.run(30)
    assert w.masters() == ["a"]


def test_effective_priority_clamps():
    assert effective_priority(100, 200) == 254
    assert effective_priority(100, -200) == 1
    assert effective_priority(255, -50) == 255
    assert effective_priority(101, 50) == 151


# -- a MASTER's answer to adverts (keepalived's vrrp_state_master_rx) ------------------
def master(prio=100, ip="10.0.0.5", **kw) -> Instance:
    n = node("m", prio, ip, **kw)
    n.start(0.0)
    n.tick(n.deadline)
    assert n.state == MASTER
    return n


def test_master_answers_lower_priority_with_an_advert_and_stays():
    m = master()
    due = m.deadline
    out = m.advert(5.0, 90, "10.0.0.9", 1.0)
    assert m.state == MASTER
    assert Send(100) in out and LowerAdvert("10.0.0.9", 90) in out
    assert Notice("Received advert from 10.0.0.9 with lower priority 90, ours 100, "
                  "forcing new election") in out
    assert m.deadline == due  # the answer is extra: the advert timer runs on


def test_master_equal_priority_tie_break_on_address():
    low = master(ip="10.0.0.5")  # the peer's address is higher: yield
    out = low.advert(5.0, 100, "10.0.0.9", 1.0)
    assert low.state == BACKUP and Enter(BACKUP, "higher priority advert from 10.0.0.9") in out
    assert not any(isinstance(a, Send) for a in out)
    high = master(ip="10.0.0.9")  # ours is higher: answer as for a lower priority
    out = high.advert(5.0, 100, "10.0.0.5", 1.0)
    assert high.state == MASTER and Send(100) in out
    # numeric, not textual: 10.0.0.10 > 10.0.0.9
    ten = master(ip="10.0.0.9")
    ten.advert(5.0, 100, "10.0.0.10", 1.0)
    assert ten.state == BACKUP


def test_master_yields_to_higher_priority_and_adopts_v3_interval():
    m = master(version=3, advert=0.1)
    out = m.advert(5.0, 200, "10.0.0.1", 0.5)
    assert m.state == BACKUP and m.master_adver_int == 0.5
    assert Notice("Master received advert from 10.0.0.1 with higher priority 200, ours 100") \
        in out
    assert not any(isinstance(a, Send) for a in out)
    assert m.deadline == pytest.approx(5.0 + 3 * 0.5 + (256 - 100) * 0.5 / 256)


def test_master_options_lower_prio_no_advert_and_higher_prio_send_advert():
    quiet = master(lower_prio_no_advert=True)
    out = quiet.advert(5.0, 90, "10.0.0.9", 1.0)
    assert quiet.state == MASTER and not any(isinstance(a, Send) for a in out)
    assert LowerAdvert("10.0.0.9", 90) in out
    loud = master(higher_prio_send_advert=True)
    out = loud.advert(5.0, 200, "10.0.0.1", 1.0)
    assert out[0] == Send(100) and loud.state == BACKUP


def test_master_own_address_equal_priority_is_a_warning_only():
    m = master(ip="10.0.0.5")
    out = m.advert(5.0, 100, "10.0.0.5", 1.0)
    assert m.state == MASTER and len(out) == 1 and isinstance(out[0], Notice)
    assert "with our IP address" in out[0].message


def test_lower_priority_master_is_silenced_on_the_wire():
    """Split brain healed: both MASTER; the lower one hears the answer and yields."""
    w = Wire(node("a", 100, "10.0.0.1"), node("b", 90, "10.0.0.2"))
    w.start()
    w.run(10)
    b = w.node("b")
    b.state, b.deadline = MASTER, w.now  # b went MASTER while the link was cut
    w.run(w.now + 0.5)
    assert w.masters() == ["a"] and w.became("b", BACKUP)


def test_sync_member_only_wants_master():
    n = node("s", 100, "10.0.0.1", sync=True)
    n.start(0.0)
    out = n.tick(n.deadline)
    assert out == [WantMaster("master down")] and n.state == BACKUP and n.wants == MASTER
    n.advert(n.deadline - 1, 200, "10.0.0.2", 1.0)  # a master is heard again
    assert n.wants == ""
    n.tick(n.deadline)
    assert n.force(n.deadline, MASTER, "sync group G")[0] == Enter(MASTER, "sync group G")


def test_handover_sends_priority_zero_and_holds_backup():
    m = master()
    out = m.handover(5.0)
    assert out == [Send(0), Enter(BACKUP, "handover")] and m.state == BACKUP and m.held
