"""keepalived's validation rules, each one."""

from __future__ import annotations

import pytest
from helpers import VRRP, instance, load_text, messages


@pytest.mark.parametrize("body, fragment", [
    ("virtual_router_id 0", "outside range [1, 255]"),
    ("virtual_router_id 256", "outside range [1, 255]"),
    ("priority 0", "outside range [1, 255]"),
    ("priority 256", "outside range [1, 255]"),
    ("advert_int 0", "outside range"),
    ("version 4", "outside range [2, 3]"),
    ("state SLAVE", "'SLAVE' is not one of MASTER, BACKUP"),
    ("unicast_ttl 0", "outside range [1, 255]"),
])
def test_range_errors(tmp_path, body, fragment):
    loaded = load_text(tmp_path, VRRP.format(body=body))
    assert not loaded.ok
    assert any(fragment in m for m in messages(loaded, "error")), messages(loaded)


def test_missing_vrid_drops_the_instance(tmp_path):
    loaded = load_text(tmp_path, "vrrp_instance X {\n interface eth0\n}\n")
    assert not loaded.ok and loaded.config.vrrp_instances == ()
    assert any("virtual router id must be set" in m for m in messages(loaded, "error"))


def test_missing_interface_uses_default_interface(tmp_path):
    text = "global_defs {\n default_interface eth9\n}\nvrrp_instance X {\n virtual_router_id 9\n}\n"
    loaded = load_text(tmp_path, text)
    assert loaded.ok and instance(loaded, "X").interface == "eth9"
    loaded = load_text(tmp_path, "vrrp_instance X {\n virtual_router_id 9\n}\n")
    assert not loaded.ok


def test_v2_advert_must_be_integer_seconds(tmp_path):
    loaded = load_text(tmp_path, VRRP.format(body="advert_int 0.5"))
    assert loaded.ok
    assert instance(loaded).advert_int == 1.0
    assert any("must be an integer" in m for m in messages(loaded, "warning"))


def test_v3_advert_in_centiseconds(tmp_path):
    loaded = load_text(tmp_path, VRRP.format(body="version 3\nadvert_int 0.125"))
    assert loaded.ok and instance(loaded).advert_int == pytest.approx(0.12)
    assert any("units of 10 ms" in m for m in messages(loaded, "warning"))
    loaded = load_text(tmp_path, VRRP.format(body="version 3\nadvert_int 0.02"))
    assert loaded.ok and instance(loaded).advert_int == pytest.approx(0.02)
    assert not messages(loaded, "warning")
    loaded = load_text(tmp_path, VRRP.format(body="version 3\nadvert_int 41"))
    assert not loaded.ok


def test_auth_only_on_v2(tmp_path):
    auth = "authentication {\n auth_type PASS\n auth_pass x\n}"
    loaded = load_text(tmp_path, VRRP.format(body="version 3\n" + auth))
    assert loaded.ok and instance(loaded).authentication is None
    assert any("version 3 does not support authentication" in m for m in messages(loaded))
    loaded = load_text(tmp_path, VRRP.format(body=auth))
    assert instance(loaded).authentication.auth_pass == "x"


def test_nopreempt_needs_state_backup(tmp_path):
    loaded = load_text(tmp_path, VRRP.format(body="state MASTER\nnopreempt"))
    assert loaded.ok and not instance(loaded).nopreempt
    assert any("nopreempt needs state BACKUP" in m for m in messages(loaded, "warning"))
    loaded = load_text(tmp_path, VRRP.format(body="state BACKUP\nnopreempt"))
    assert instance(loaded).nopreempt and not messages(loaded)


def test_unknown_tracker_names(tmp_path):
    body = "track_script {\n nosuch\n}\ntrack_file {\n nofile\n}\ntrack_process {\n noproc\n}"
    loaded = load_text(tmp_path, VRRP.format(body=body))
    errs = messages(loaded, "error")
    assert len(errs) == 3
    assert any("track_script 'nosuch' is not defined" in m for m in errs)
    assert any("track_file 'nofile'" in m for m in errs)
    assert any("track_process 'noproc'" in m for m in errs)


def test_duplicate_vrid_on_an_interface(tmp_path):
    two = VRRP.format(body="") + VRRP.format(body="").replace("VI_1", "VI_2")
    loaded = load_text(tmp_path, two)
    assert any("VRID 51 is already used on interface eth0 by VI_1" in m
               for m in messages(loaded, "error"))
    other_if = VRRP.format(body="") + VRRP.format(body="").replace("VI_1", "VI_2").replace(
        "eth0", "eth1")
    assert load_text(tmp_path, other_if).ok
    v6 = VRRP.format(body="") + VRRP.format(body="").replace("VI_1", "VI_2").replace(
        "10.0.0.1", "fd00::1")
    assert load_text(tmp_path, v6).ok  # same VRID, other family


def test_duplicate_instance_name(tmp_path):
    two = VRRP.format(body="") + VRRP.format(body="").replace("51", "52")
    assert any("already defined" in m for m in messages(load_text(tmp_path, two), "error"))


def test_mixed_family_vips_and_ipv6_forces_v3(tmp_path):
    loaded = load_text(tmp_path, VRRP.format(body="").replace(
        "10.0.0.1", "fd00::1\n        10.0.0.2"))
    inst = instance(loaded)
    assert inst.family == 6 and inst.version == 3
    assert [v.address for v in inst.virtual_ipaddress] == ["fd00::1"]
    assert any("does not match" in m for m in messages(loaded, "warning"))


def test_strict_mode_rules(tmp_path):
    text = "global_defs {\n vrrp_strict\n}\n" + VRRP.format(
        body="state MASTER\nunicast_peer {\n 10.0.0.7\n}")
    loaded = load_text(tmp_path, text)
    assert any("not allowed in strict mode" in m for m in messages(loaded, "error"))
    inst = instance(loaded)
    assert inst.state == "BACKUP" and inst.accept is False and inst.strict_mode


def test_sync_group_members(tmp_path):
    text = VRRP.format(body="") + "vrrp_sync_group G {\n group {\n VI_1\n VI_9\n }\n}\n"
    errs = messages(load_text(tmp_path, text), "error")
    assert any("vrrp_instance VI_9 is not defined" in m for m in errs)


def test_lvs_references(tmp_path):
    text = """
        virtual_server group NOPE {
            real_server 10.0.0.1 80 { }
        }
        virtual_server 10.0.0.1 80 {
            real_server 10.0.1.1 { }
            real_server fd00::1 80 { }
            real_server 10.0.1.2 80 { }
            real_server 10.0.1.2 80 { }
            real_server 10.0.1.3 80 { FILE_CHECK { track_file nope } }
        }
        virtual_server 10.0.0.1 80 { }
    """
    errs = messages(load_text(tmp_path, text), "error")
    for frag in ("group NOPE is not defined", "10.0.1.1 needs a port", "fd00::1 is not of the",
                 "10.0.1.2 80 is already in", "track_file 'nope' is not defined",
                 "[10.0.0.1]:tcp:80 is already defined"):
        assert any(frag in m for m in errs), (frag, errs)


def test_lvs_sync_daemon_instance_must_exist(tmp_path):
    text = "global_defs {\n lvs_sync_daemon eth0 VI_X\n}\n" + VRRP.format(body="")
    assert any("VI_X is not defined" in m for m in messages(load_text(tmp_path, text), "error"))


def test_nonexistent_interface_is_a_warning(tmp_path):
    loaded = load_text(tmp_path, VRRP.format(body="").replace("eth0", "nosuchif0"),
                       check_host=True)
    assert loaded.ok
    assert any("interface nosuchif0 doesn't exist" in m for m in messages(loaded, "warning"))
    loaded = load_text(tmp_path, VRRP.format(body="").replace("eth0", "lo"), check_host=True)
    assert not any("doesn't exist" in m for m in messages(loaded))
