"""Which IPVS sync daemon runs, following the VRRP instance `lvs_sync_daemon` names: a
pure core (transitions in, daemon commands out), as keepalived decides it
(vrrp_init_state, vrrp_state_become_master / leave_master, the VRRP process's stop):

- the instance starts: the BACKUP daemon (receives the master's connections);
- it becomes MASTER: the BACKUP daemon stops, the MASTER daemon starts (sends them);
- it leaves MASTER (to BACKUP or FAULT): the other way round;
- the VRRP side stops: the daemon of the current state stops.

The commands go to the plane (`VrrpPlane.sync_daemon`), which runs them in order with
the address changes, off the loop. A reload keeps the daemon running when its options
did not change; a restarted child starts from "unknown", so its first commands clean up
whatever a crashed run left (quietly).
"""

from __future__ import annotations

from daemonlib.ipvs_syncd import Role, SyncdCommand, SyncdParams

from .fsm import BACKUP, FAULT, MASTER


class SyncdFollower:
    def __init__(self, params: SyncdParams) -> None:
        self.params = params
        self.role: Role | None = None  # the daemon started last; None: unknown

    def _become(self, role: Role) -> list[SyncdCommand]:
        if self.role == role:
            return []
        other: Role = "backup" if role == "master" else "master"
        # unknown (start, a restarted child): the other one may be a crashed run's leftover
        cmds = [SyncdCommand("stop", other, self.params, cleanup=self.role is None),
                SyncdCommand("start", role, self.params)]
        self.role = role
        return cmds

    def start(self) -> list[SyncdCommand]:
        """The instance starts (BACKUP, or FAULT: keepalived starts the BACKUP daemon
        either way)."""
        return self._become("backup")

    def resume_master(self) -> list[SyncdCommand]:
        """MASTER without a transition (a restarted child, a reload)."""
        return self._become("master")

    def entered(self, prev: str, state: str) -> list[SyncdCommand]:
        if state == MASTER and prev != MASTER:
            return self._become("master")
        if prev == MASTER and state in (BACKUP, FAULT):
            return self._become("backup")
        return []  # INIT (stop) is `stop`'s; BACKUP <-> FAULT changes nothing

    def stop(self) -> list[SyncdCommand]:
        if self.role is None:
            return []
        cmds = [SyncdCommand("stop", self.role, self.params)]
        self.role = None
        return cmds

    def adopt(self, old: SyncdFollower) -> list[SyncdCommand]:
        """A reload: same options, the running daemon is kept; changed options, it is
        stopped here and started again with the new ones by the next transition."""
        if old.params == self.params:  # the old instance, if dropped, must not stop it
            self.role, old.role = old.role, None
            return []
        return old.stop()
