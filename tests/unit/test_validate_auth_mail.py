"""keepalived's repairs for authentication, and smtp_alert left unset when not given (so
that the global smtp_alert* defaults apply, as keepalived resolves them)."""

from __future__ import annotations

from helpers import VRRP, instance, load_text, messages


def auth(kind: str, password: str) -> str:
    return f"version 2\n    authentication {{\n auth_type {kind}\n auth_pass {password}\n }}"


def test_ah_with_initial_state_master_starts_backup(tmp_path):
    body = "state MASTER\n    priority 100\n    " + auth("AH", "pw")
    loaded = load_text(tmp_path, VRRP.format(body=body))
    assert loaded.ok and instance(loaded).state == "BACKUP"
    assert instance(loaded).authentication.auth_type == "AH"
    assert any("incompatible with AH" in m for m in messages(loaded, "warning"))
    owner = VRRP.format(body="state MASTER\n    priority 255\n    " + auth("AH", "pw"))
    assert instance(load_text(tmp_path, owner)).state == "MASTER"  # the address owner may
    # without a priority, keepalived makes a MASTER the owner (255): no repair
    bare = VRRP.format(body="state MASTER\n    " + auth("AH", "pw"))
    assert instance(load_text(tmp_path, bare)).state == "MASTER"


def test_authentication_without_password_is_ignored(tmp_path):
    loaded = load_text(tmp_path, VRRP.format(body=auth("PASS", '""')))
    assert loaded.ok and instance(loaded).authentication is None
    assert any("no password" in m for m in messages(loaded, "warning"))


def test_smtp_alert_unset_or_given(tmp_path):
    assert instance(load_text(tmp_path, VRRP.format(body=""))).smtp_alert is None
    assert instance(load_text(tmp_path, VRRP.format(body="smtp_alert"))).smtp_alert is True
    assert instance(load_text(tmp_path, VRRP.format(body="smtp_alert off"))).smtp_alert \
        is False
    g = load_text(tmp_path, "global_defs {\n smtp_alert\n}\n" + VRRP.format(body=""))
    assert g.config.global_defs.smtp_alert is True
