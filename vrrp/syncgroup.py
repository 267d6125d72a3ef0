"""The state logic of a VRRP sync group (keepalived's vrrp_sync.c). Pure: the members'
states in, commands out; vrrp/daemon.py applies them to the routers.

Rules:
- all MASTER or none: a member entering MASTER takes the others along; a MASTER
  dropping to BACKUP takes the others along;
- a member whose Master_Down ran out only wants MASTER; the group goes MASTER when every
  member wants it (or is MASTER already), so that a member still hearing a master keeps
  the whole group BACKUP instead of thrashing (vrrp_sync_can_goto_master);
- one member's fault is the whole group's: every member goes FAULT until none has one;
- the group's own state (logged, notified, written to the FIFO) is FAULT when any member
  is, else the members' common state once they agree;
- without `sync_group_tracking_weight`, no tracker moves a member's priority (floating
  priorities would split the group): a weighted interface, or a file of the default
  weight 1, counts with weight 0 (down is a fault); a weighted script or file is
  ignored; tracked processes keep their weight (as keepalived's vrrp_complete_instance).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .fsm import BACKUP, FAULT, INIT, MASTER


@attrs.frozen
class Member:
    """What the group needs to know of one member."""

    state: str
    wants: str = ""  # MASTER when its Master_Down ran out while in the group
    own_fault: bool = False  # its own trackers say fault


@attrs.frozen
class Force:
    """Move `member` to `to` (MASTER or BACKUP)."""

    member: str
    to: str
    reason: str


@attrs.frozen
class GroupFault:
    """Tell `member` whether the group is in fault because of some member."""

    member: str
    fault: bool


@attrs.frozen
class GroupEntered:
    """The group as a whole entered `state`: log, FIFO and notify scripts."""

    state: str


Command = Force | GroupFault | GroupEntered


def member_weight(kind: str, weight: int, tracking_weight: bool) -> int | None:
    """A tracker's weight on a sync group member; None: the tracker is ignored."""
    if tracking_weight or weight == 0 or kind == "process":
        return weight
    if kind == "interface" or (kind == "file" and weight == 1):
        return 0
    return None


@attrs.define
class SyncCore:
    name: str
    members: tuple[str, ...]
    state: str = INIT

    @property
    def reason(self) -> str:
        return f"sync group {self.name}"

    def want_master(self, member: str, view: Mapping[str, Member]) -> list[Command]:
        """`member`'s Master_Down ran out: MASTER for all once all want it."""
        ready = all(m == member or view[m].state == MASTER or view[m].wants == MASTER
                    for m in self.members)
        if not ready and self.state != MASTER:
            return []
        return [Force(m, MASTER, self.reason) for m in self.members
                if view[m].state == BACKUP]

    def entered(self, member: str, to: str, view: Mapping[str, Member]) -> list[Command]:
        """`member` entered `to` on its own: the others follow to MASTER or BACKUP."""
        if to == MASTER:
            follow = (BACKUP,)
        elif to == BACKUP:
            follow = (MASTER,)
        else:
            return []
        return [Force(m, to, self.reason) for m in self.members
                if m != member and view[m].state in follow]

    def faults(self, view: Mapping[str, Member]) -> list[Command]:
        """A member's own fault changed: every member shares the group's fault."""
        fault = any(view[m].own_fault for m in self.members)
        return [GroupFault(m, fault) for m in self.members]

    def settle(self, view: Mapping[str, Member]) -> list[Command]:
        """The group's state after the members moved."""
        states = {view[m].state for m in self.members}
        if FAULT in states:
            new = FAULT
        elif len(states) == 1:
            new = states.pop()
        else:
            new = self.state
        if new == self.state or new == INIT:
            return []
        self.state = new
        return [GroupEntered(new)]
