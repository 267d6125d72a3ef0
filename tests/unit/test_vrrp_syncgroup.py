"""The sync group's pure core (keepalived's vrrp_sync.c) with members on the virtual clock."""

from __future__ import annotations

from vrrp.fsm import BACKUP, FAULT, INIT, MASTER, Enter, Instance, WantMaster
from vrrp.syncgroup import Force, GroupEntered, GroupFault, Member, SyncCore, member_weight


class Group:
    """Members as fsm Instances, commands applied as vrrp/daemon.py's SyncGroup does."""

    def __init__(self, *prios: int) -> None:
        self.nodes = {f"VI_{i}": Instance(name=f"VI_{i}", version=3, priority=p,
                                          advert_int=1.0, primary_ip="10.0.0.1", sync=True)
                      for i, p in enumerate(prios, 1)}
        self.core = SyncCore("G", tuple(self.nodes))
        self.faults: dict[str, bool] = dict.fromkeys(self.nodes, False)
        self.group_fault: dict[str, bool] = dict.fromkeys(self.nodes, False)
        self.entered: list[str] = []
        self.now = 0.0

    def view(self) -> dict[str, Member]:
        return {n: Member(i.state, i.wants, self.faults[n]) for n, i in self.nodes.items()}

    def handle(self, name: str, actions) -> None:
        cmds = []
        for a in actions:
            if isinstance(a, Enter):
                cmds += self.core.entered(name, a.to, self.view())
            elif isinstance(a, WantMaster):
                cmds += self.core.want_master(name, self.view())
        self.apply(cmds)

    def apply(self, cmds) -> None:
        for c in cmds:
            if isinstance(c, Force):
                self.nodes[c.member].force(self.now, c.to, c.reason)
            elif isinstance(c, GroupFault):
                self.group_fault[c.member] = c.fault
                self.nodes[c.member].fault(self.now, c.fault or self.faults[c.member])
        for c in self.core.settle(self.view()):
            assert isinstance(c, GroupEntered)
            self.entered.append(c.state)

    def start(self) -> None:
        for name, n in self.nodes.items():
            self.handle(name, n.start(self.now))

    def tick(self, until: float) -> None:
        while True:
            due = [(n.deadline, name) for name, n in self.nodes.items()
                   if n.deadline is not None and n.deadline <= until]
            if not due:
                break
            self.now, name = min(due)
            self.handle(name, self.nodes[name].tick(self.now))
        self.now = until

    def states(self) -> set[str]:
        return {n.state for n in self.nodes.values()}


def test_group_goes_master_only_when_every_member_wants_it():
    g = Group(100, 200)  # VI_2's Master_Down runs out first
    g.start()
    assert g.entered == [BACKUP]
    first = min(n.deadline for n in g.nodes.values())
    g.tick(first)
    assert g.states() == {BACKUP} and g.nodes["VI_2"].wants == MASTER
    g.tick(first + 0.5)  # VI_1's ran out too: both MASTER together
    assert g.states() == {MASTER} and g.entered == [BACKUP, MASTER]


def test_member_still_hearing_a_master_keeps_the_group_backup():
    g = Group(100, 100)
    g.start()
    for t in range(1, 20):  # VI_1 hears a master every second; VI_2 hears nothing
        g.tick(float(t))
        g.handle("VI_1", g.nodes["VI_1"].advert(g.now, 200, "10.0.0.9", 1.0))
    assert g.states() == {BACKUP} and g.nodes["VI_2"].wants == MASTER
    g.tick(30.0)  # the master is gone: the group goes MASTER as one
    assert g.states() == {MASTER}


def test_master_leaving_takes_the_others_to_backup():
    g = Group(100, 100)
    g.start()
    g.tick(10)
    assert g.states() == {MASTER}
    g.handle("VI_1", g.nodes["VI_1"].advert(g.now, 200, "10.0.0.9", 1.0))
    assert g.states() == {BACKUP} and g.entered[-1] == BACKUP


def test_one_members_fault_faults_the_group_and_recovers_together():
    g = Group(100, 100)
    g.start()
    g.tick(10)
    g.faults["VI_2"] = True
    g.apply(g.core.faults(g.view()))
    assert g.states() == {FAULT} and g.entered[-1] == FAULT
    assert g.group_fault == {"VI_1": True, "VI_2": True}
    g.faults["VI_2"] = False
    g.apply(g.core.faults(g.view()))
    assert g.states() == {BACKUP} and g.entered[-1] == BACKUP
    g.tick(g.now + 10)
    assert g.states() == {MASTER}


def test_group_state_ignores_init_and_mixed_states():
    core = SyncCore("G", ("a", "b"))
    assert core.settle({"a": Member(INIT), "b": Member(INIT)}) == []
    assert core.settle({"a": Member(BACKUP), "b": Member(MASTER)}) == []
    assert core.settle({"a": Member(MASTER), "b": Member(MASTER)}) == [GroupEntered(MASTER)]
    assert core.settle({"a": Member(MASTER), "b": Member(MASTER)}) == []  # no repeat


def test_tracking_weights_inside_a_group():
    assert member_weight("script", -20, True) == -20  # sync_group_tracking_weight
    assert member_weight("script", -20, False) is None  # a weighted script: ignored
    assert member_weight("interface", 10, False) == 0  # down is a fault
    assert member_weight("file", 1, False) == 0  # the default weight
    assert member_weight("file", 5, False) is None
    assert member_weight("process", 5, False) == 5
    assert member_weight("script", 0, False) == 0
