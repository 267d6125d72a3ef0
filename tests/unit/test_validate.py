"""keepalived's validation rules, each one."""

from __future__ import annotations

import pytest
from helpers import VRRP, instance, load_text, messages


@pytest.mark.parametrize("body, fragment, field, value", [
    ("priority 0", "outside range [1, 255]", "priority", 100),
    ("priority 256", "outside range [1, 255]", "priority", 100),
    ("priority 100,backup", "is not an integer", "priority", 100),
    ("advert_int 0", "outside range", "advert_int", 1.0),
    ("version 4", "outside range [2, 3]", "version", 2),
    ("state SLAVE", "'SLAVE' is not one of MASTER, BACKUP", "state", None),
    ("state MASTER;", "is not one of MASTER, BACKUP", "state", None),
    ("unicast_ttl 256", "outside range [0, 255]", "unicast_ttl", 255),
    ("garp_master_repeat 0", "must be greater than 0; set to 1", "garp_master_repeat", 1),
])
def test_bad_values_warn_and_keep_the_default(tmp_path, body, fragment, field, value):
    """keepalived logs a bad value and runs with the default (state: BACKUP)."""
    loaded = load_text(tmp_path, VRRP.format(body=body))
    assert loaded.ok, messages(loaded)
    assert any(fragment in m for m in messages(loaded, "warning")), \
        messages(loaded)
    assert getattr(instance(loaded), field) == value


@pytest.mark.parametrize("body", ["virtual_router_id 0", "virtual_router_id 256",
                                  "virtual_router_id 51;"])
def test_bad_vrid_leaves_it_unset_which_keepalived_refuses(tmp_path, body):
    loaded = load_text(tmp_path, VRRP.format(body="").replace("virtual_router_id 51", body))
    assert not loaded.ok
    assert any("virtual router id must be set" in m for m in messages(loaded, "error"))


def test_extra_words_after_a_one_value_keyword(tmp_path):
    """keepalived reads the first word: `state MASTER priority 200` is state MASTER with
    no priority given, which keepalived makes the address owner's 255."""
    loaded = load_text(tmp_path, VRRP.format(body="state MASTER priority 200"))
    assert loaded.ok, messages(loaded)
    assert (instance(loaded).state, instance(loaded).priority) == ("MASTER", 255)
    assert any("state takes one value: 'priority 200' ignored" in m
               for m in messages(loaded, "warning"))


def test_addresses_with_a_prefix_where_keepalived_takes_an_address(tmp_path):
    body = "mcast_src_ip 10.0.0.5/24\nunicast_peer {\n 10.0.0.7/24\n}"
    loaded = load_text(tmp_path, VRRP.format(body=body))
    assert loaded.ok, messages(loaded)
    inst = instance(loaded)
    assert inst.mcast_src_ip == "10.0.0.5" and inst.unicast_peer[0].address == "10.0.0.7"
    assert sum("'/24' after the address ignored" in m for m in messages(loaded)) == 2


def test_unresolved_definition_skips_the_item(tmp_path):
    """A `$NAME` never defined stays as written: not an address, so the item is skipped."""
    text = VRRP.format(body="unicast_peer {\n $PEER\n 10.0.0.8\n}").replace(
        "10.0.0.1\n", "$VIP\n        10.0.0.1\n")
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    inst = instance(loaded)
    assert [v.address for v in inst.virtual_ipaddress] == ["10.0.0.1"]
    assert [p.address for p in inst.unicast_peer] == ["10.0.0.8"]
    assert sum("skipped" in m for m in messages(loaded, "warning")) == 2


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
    assert loaded.ok and instance(loaded).advert_int == pytest.approx(40.95)
    assert any("set to 40.95s" in m for m in messages(loaded, "warning"))


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
    """keepalived: 'track script X not found, ignoring...'."""
    body = "track_script {\n nosuch\n}\ntrack_file {\n nofile\n}\ntrack_process {\n noproc\n}"
    loaded = load_text(tmp_path, VRRP.format(body=body))
    assert loaded.ok
    inst = instance(loaded)
    assert (inst.track_script, inst.track_file, inst.track_process) == ((), (), ())
    errs = messages(loaded, "warning")
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


def test_duplicate_names_as_keepalived(tmp_path):
    """A second vrrp_instance / vrrp_sync_group of a name is skipped; a second tracker
    of a name is not used (keepalived finds the first)."""
    two = (VRRP.format(body="") + VRRP.format(body="").replace("51", "52")
           + "vrrp_script s {\n script /bin/true\n}\nvrrp_script s {\n script /bin/false\n}\n"
           + "vrrp_instance {\n interface eth0\n}\nvrrp_instance A B {\n interface eth0\n}\n")
    loaded = load_text(tmp_path, two)
    assert loaded.ok, messages(loaded)
    assert [i.virtual_router_id for i in loaded.config.vrrp_instances] == [51]
    assert [s.script.argv for s in loaded.config.vrrp_scripts] == [("/bin/true",)]
    warns = messages(loaded, "warning")
    assert any("VI_1 is already defined at" in m and "skipped" in m for m in warns)
    assert any("vrrp_script 's' is already defined" in m for m in warns)
    assert sum("must have exactly one name; skipped" in m for m in warns) == 2


def test_mixed_family_vips_and_ipv6_forces_v3(tmp_path):
    loaded = load_text(tmp_path, VRRP.format(body="").replace(
        "10.0.0.1", "fd00::1\n        10.0.0.2"))
    inst = instance(loaded)
    assert inst.family == 6 and inst.version == 3
    assert [v.address for v in inst.virtual_ipaddress] == ["fd00::1"]
    assert any("does not match" in m for m in messages(loaded, "warning"))


def test_strict_mode_rules(tmp_path):
    text = "global_defs {\n vrrp_strict\n}\n" + VRRP.format(
        body="state MASTER\npriority 100\nunicast_peer {\n 10.0.0.7\n}")
    loaded = load_text(tmp_path, text)
    assert any("not allowed in strict mode" in m for m in messages(loaded, "error"))
    inst = instance(loaded)
    assert inst.state == "BACKUP" and inst.accept is False and inst.strict_mode


def test_sync_group_members(tmp_path):
    two = VRRP.format(body="") + VRRP.format(body="").replace("VI_1", "VI_2").replace(
        "51", "52")
    text = two + "vrrp_sync_group G {\n group {\n VI_1\n VI_9\n VI_1\n VI_2\n }\n}\n"
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    assert loaded.config.vrrp_sync_groups[0].group == ("VI_1", "VI_2")
    warns = messages(loaded, "warning")
    assert any("vrrp_instance VI_9 is not defined; ignored" in m for m in warns)
    assert any("VI_1 is already in sync group G; ignored" in m for m in warns)


@pytest.mark.parametrize("group", [
    "VI_1\n VI_2\n",                    # members without a group { } block (1.x style)
    "group {\n }\n",                     # an empty group
    "group {\n include nothing-*.conf\n }\n",  # a glob that matched nothing
])
def test_sync_group_without_members_is_removed(tmp_path, group):
    text = VRRP.format(body="") + f"vrrp_sync_group G {{\n {group}}}\n"
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    assert loaded.config.vrrp_sync_groups == ()
    assert any("G has no members; removed" in m for m in messages(loaded, "warning"))


def test_vrrp_script_without_script_is_removed_with_its_trackers(tmp_path):
    text = ("vrrp_script chk {\n interval 2\n}\n"
            + VRRP.format(body="track_script {\n chk\n}"))
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    assert loaded.config.vrrp_scripts == () and instance(loaded).track_script == ()
    warns = messages(loaded, "warning")
    assert any("vrrp_script chk has no 'script'; removed" in m for m in warns)
    assert any("track_script 'chk' is not defined; ignored" in m for m in warns)


def test_lvs_references(tmp_path):
    text = """
        virtual_server group NOPE {
            real_server 10.0.0.1 80 { }
        }
    """
    loaded = load_text(tmp_path, text)
    assert loaded.ok and loaded.config.virtual_servers == ()
    assert any("group NOPE is not defined; the virtual server is ignored" in m
               for m in messages(loaded, "warning"))


def test_lvs_repairs_as_keepalived(tmp_path):
    text = """
        virtual_server 10.0.0.1 80 {
            protocol TCP
            quorum 10
            hysteresis 20
            real_server 10.0.1.1 { }
            real_server fd00::1 80 { }
            real_server fd00::2 80 { lb_kind TUN }
            real_server 10.0.1.2 80 { }
            real_server 10.0.1.2 80 { }
            real_server 10.0.1.3 80 { FILE_CHECK { track_file nope } }
            real_server 10.0.1.4 8080 { lb_kind DR }
        }
        virtual_server 10.0.0.1 80 {
            protocol TCP
            real_server 10.0.1.9 80 { }
        }
        virtual_server 10.0.0.2 80 { }
    """
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    (vs,) = loaded.config.virtual_servers
    assert [(r.address, r.port) for r in vs.real_servers] == [
        ("10.0.1.1", 80), ("fd00::2", 80), ("10.0.1.2", 80), ("10.0.1.3", 80),
        ("10.0.1.4", 80), ("10.0.1.9", 80)]
    assert vs.real_servers[3].checkers == ()
    assert (vs.quorum, vs.hysteresis) == (5, 4)
    warns = messages(loaded, "warning")
    for frag in ("fd00::1 is not of the virtual server's address family; skipped",
                 "10.0.1.2 port 80 is listed twice", "track_file 'nope' is not defined",
                 "port 8080 differs from the virtual server's with DR; reset to 80",
                 "quorum 10 exceeds", "hysteresis 20 >= quorum 5; set to 4",
                 "[10.0.0.1]:tcp:80 is already defined", "10.0.0.2 80 has no real servers"):
        assert any(frag in m for m in warns), (frag, warns)


def test_persistence_timeout_0_and_port_0(tmp_path):
    text = """
        virtual_server 10.0.0.1 80 {
            protocol TCP
            persistence_timeout 0
            real_server 10.0.1.1 80 { }
        }
        virtual_server 10.0.0.2 0 {
            protocol TCP
            real_server 10.0.1.1 80 { }
        }
    """
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    a, b = loaded.config.virtual_servers
    assert (a.persistence_timeout, b.persistence_timeout) == (0, 360)
    assert any("persistence_timeout set to 360" in m for m in messages(loaded, "warning"))


def test_checker_timing_resolved_once_zero_stays_zero(tmp_path):
    """The model carries the effective values (checker, else real server, else virtual
    server, else the checker kind's default); an explicit 0 stays 0."""
    text = """
        virtual_server 10.0.0.1 80 {
            protocol TCP
            delay_loop 10
            delay_before_retry 0
            retry 0
            real_server 10.0.1.1 80 {
                warmup 0
                TCP_CHECK {
                    retry 0
                }
                HTTP_GET {
                    url { path / }
                    delay_before_retry 2
                    connect_timeout 0.5
                    delay_loop 3
                }
            }
            real_server 10.0.1.2 80 {
                DNS_CHECK { name a.example }
                MISC_CHECK { misc_path /bin/true }
                HTTP_GET { url { path / } }
            }
        }
    """
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    rs1, rs2 = loaded.config.virtual_servers[0].real_servers
    t = lambda c: (c.retry, c.delay_before_retry, c.warmup, c.delay_loop, c.connect_timeout)  # noqa: E731
    # keepalived: a virtual server's retry must be >= 1 (0 ignored), a checker's may be 0
    assert [t(c) for c in rs1.checkers] == [(0, 0, 0, 10, 5.0), (1, 2, 0, 3, 0.5)]
    dns, misc, http = rs2.checkers
    assert t(dns) == (3, 0, 10, 10, 5.0)  # the virtual server's dbr 0 wins; DNS retry 3
    assert misc.misc_timeout == 10
    assert any("retry: number '0' outside range" in m for m in messages(loaded, "warning"))


def test_checker_kind_defaults(tmp_path):
    text = """
        virtual_server 10.0.0.1 80 {
            protocol TCP
            delay_loop 7
            real_server 10.0.1.2 80 {
                DNS_CHECK { name a.example }
                MISC_CHECK { misc_path /bin/true }
                HTTP_GET { url { path / } }
                TCP_CHECK { }
            }
        }
    """
    loaded = load_text(tmp_path, text)
    dns, misc, http, tcp = loaded.config.virtual_servers[0].real_servers[0].checkers
    # keepalived: DNS retry 3 and delay_before_retry = delay_loop; MISC retry 0;
    # HTTP delay_before_retry 3 s; TCP retry 1, 1 s; warmup = delay_loop
    assert [(c.retry, c.delay_before_retry, c.warmup) for c in (dns, misc, http, tcp)] == [
        (3, 7, 7), (0, 1, 7), (1, 3, 7), (1, 1, 7)]


def test_lvs_sync_daemon_instance_must_exist(tmp_path):
    text = "global_defs {\n lvs_sync_daemon eth0 VI_X\n}\n" + VRRP.format(body="")
    loaded = load_text(tmp_path, text)
    assert loaded.ok and loaded.config.global_defs.lvs_sync_daemon is None
    assert any("VI_X is not defined; lvs_sync_daemon cleared" in m
               for m in messages(loaded, "warning"))


def test_nonexistent_interface_is_a_warning(tmp_path):
    loaded = load_text(tmp_path, VRRP.format(body="").replace("eth0", "nosuchif0"),
                       check_host=True)
    assert loaded.ok
    assert any("interface nosuchif0 doesn't exist" in m for m in messages(loaded, "warning"))
    loaded = load_text(tmp_path, VRRP.format(body="").replace("eth0", "lo"), check_host=True)
    assert not any("doesn't exist" in m for m in messages(loaded))


def test_owner_and_sync_group_members_take_no_tracker_weight(tmp_path):
    """keepalived: weighted scripts are ignored for an address owner and in a sync group
    without sync_group_tracking_weight; an interface weight becomes 0 (fault on down); a
    file of the default weight 1 becomes 0."""
    text = ("vrrp_script up {\n script /bin/true\n weight 20\n}\n"
            "vrrp_script flat {\n script /bin/true\n}\n"
            "track_file f {\n file /tmp/x\n}\n"
            + VRRP.format(body="track_script {\n up\n flat\n}\ntrack_interface {\n eth1 weight 5\n}"
                               "\ntrack_file {\n f\n}")
            + VRRP.format(body="priority 255\ntrack_script {\n up\n}").replace("VI_1", "VI_2")
            .replace("51", "52")
            + VRRP.format(body="track_script {\n up\n}").replace("VI_1", "VI_3")
            .replace("51", "53").replace("10.0.0.1", "10.0.0.3")
            + VRRP.format(body="track_script {\n up\n}").replace("VI_1", "VI_4")
            .replace("51", "54").replace("10.0.0.1", "10.0.0.4")
            + "vrrp_sync_group G {\n group {\n VI_1\n VI_3\n }\n}\n"
            + "vrrp_sync_group W {\n group {\n VI_4\n }\n sync_group_tracking_weight\n}\n")
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    vi1, vi2, vi3, vi4 = (instance(loaded, n) for n in ("VI_1", "VI_2", "VI_3", "VI_4"))
    assert [r.name for r in vi1.track_script] == ["flat"]
    assert [(r.name, r.weight) for r in vi1.track_interface] == [("eth1", 0)]
    assert [(r.name, r.weight) for r in vi1.track_file] == [("f", 0)]
    assert vi2.track_script == () and vi3.track_script == ()
    assert [r.name for r in vi4.track_script] == ["up"]  # the group keeps weights
    warns = messages(loaded, "warning")
    assert any("(VI_2) tracked script up with a weight is ignored (address owner)" in m
               for m in warns)


def test_authentication_without_type_or_password_is_none(tmp_path):
    for auth in ("auth_type PASS;\n auth_pass secret", "auth_type PASS"):
        loaded = load_text(tmp_path, VRRP.format(body=f"authentication {{\n {auth}\n}}"))
        assert loaded.ok, messages(loaded)
        assert instance(loaded).authentication is None
        assert any("no authentication" in m for m in messages(loaded, "warning"))


def test_track_refs_read_as_keepalived(tmp_path):
    text = ("vrrp_script s {\n script /bin/true\n weight 7\n}\n"
            "vrrp_script t {\n script /bin/true\n interval 0.5\n timeout 0\n}\n"
            + VRRP.format(body="track_script {\n s weight x\n t weight 254 noreverse\n"
                               " s\n t bogus\n}"))
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    refs = instance(loaded).track_script
    assert [(r.name, r.weight, r.reverse) for r in refs] == [("s", None, False),
                                                              ("t", 253, False)]
    t = loaded.config.vrrp_scripts[1]
    assert (t.interval, t.timeout) == (0.5, 1)  # decimals allowed; 0 set to 1
    warns = messages(loaded, "warning")
    for frag in ("the script's own weight used", "cannot be +/-254; set to 253",
                 "duplicate track_script s", "unknown option 'bogus'",
                 "timeout: must be greater than 0; set to 1"):
        assert any(frag in m for m in warns), (frag, warns)


def test_unicast_peers_as_keepalived(tmp_path):
    body = "unicast_peer {\n 10.0.0.7 bogus 1\n 10.0.0.7\n fd00::7\n 10.0.0.8 min_ttl\n}"
    loaded = load_text(tmp_path, VRRP.format(body=body))
    assert loaded.ok, messages(loaded)
    assert [p.address for p in instance(loaded).unicast_peer] == ["10.0.0.7", "10.0.0.8"]
    warns = messages(loaded, "warning")
    for frag in ("unknown unicast_peer option 'bogus' ignored", "duplicate unicast_peer",
                 "fd00::7 is not IPv4; skipped", "'min_ttl' without a value ignored"):
        assert any(frag in m for m in warns), (frag, warns)


def test_check_unicast_src_as_keepalived(tmp_path):
    """Off unless asked for in the instance or global_defs, or implied by a peer's TTL
    range (keepalived's unicast_peer min_ttl/max_ttl set it)."""
    peers = "unicast_peer {{\n 10.0.0.7{ttl}\n}}"
    cases = [("", "", False), ("check_unicast_src", "", True),
             ("", " min_ttl 250", True)]
    for extra, ttl, want in cases:
        body = peers.format(ttl=ttl) + "\n" + extra
        loaded = load_text(tmp_path, VRRP.format(body=body))
        assert loaded.ok and instance(loaded).check_unicast_src is want, (extra, ttl)
    loaded = load_text(tmp_path, "global_defs {\n vrrp_check_unicast_src\n}\n"
                       + VRRP.format(body=peers.format(ttl="")))
    assert instance(loaded).check_unicast_src is True


def test_priority_derived_from_state_as_keepalived(tmp_path):
    """No priority: state MASTER means 255 (address owner), else 100; a bad priority is
    100 (keepalived sets the default rather than leaving it unset)."""
    for body, want in (("state MASTER", 255), ("state BACKUP", 100), ("", 100),
                       ("state MASTER\npriority 0", 100), ("state MASTER\npriority 90", 90)):
        loaded = load_text(tmp_path, VRRP.format(body=body))
        assert loaded.ok and instance(loaded).priority == want, (body, messages(loaded))


@pytest.mark.parametrize("version, priority, accept_line, expected", [
    (3, 255, "", True),         # the address owner accepts by default, strict or not
    (3, 100, "", False),        # strict mode: accept off unless asked
    (3, 100, "accept", True),   # VRRPv3 allows accept in strict mode
    (2, 100, "accept", False),  # VRRPv2 strict: reset with a warning (RFC 3768)
    (2, 255, "accept", True),   # ... but never for the owner
])
def test_strict_accept_default_as_keepalived(tmp_path, version, priority, accept_line,
                                             expected):
    text = "global_defs {\n vrrp_strict\n}\n" + VRRP.format(
        body=f"version {version}\npriority {priority}\n{accept_line}")
    inst = instance(load_text(tmp_path, text))
    assert inst.accept is expected
