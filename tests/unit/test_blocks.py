"""Blocks, keywords, defaults and aliases of the model."""

from __future__ import annotations

from pathlib import Path

from helpers import VRRP, instance, load_text, messages


def test_tree_brace_placement(tmp_path):
    loaded = load_text(tmp_path, """
        vrrp_instance VI_1
        {
            interface eth0
            virtual_router_id 51
            virtual_ipaddress { 10.0.0.1 }
            unicast_peer {
               10.0.0.9 }
        }
    """)
    assert loaded.ok, messages(loaded)
    inst = instance(loaded)
    assert [v.address for v in inst.virtual_ipaddress] == ["10.0.0.1"]
    assert [p.address for p in inst.unicast_peer] == ["10.0.0.9"]


def test_one_line_block_with_several_items(tmp_path):
    # keepalived reads `{ a b }` as one line "a b": here, a VIP followed by junk
    loaded = load_text(tmp_path, "vrrp_instance V { interface eth0\nvirtual_router_id 2\n"
                                 "virtual_ipaddress { 10.0.0.1 dev eth0 }\n}\n")
    assert loaded.ok, messages(loaded)
    assert instance(loaded, "V").virtual_ipaddress[0].dev == "eth0"


def test_unbalanced_braces_are_repaired_as_keepalived(tmp_path):
    """keepalived closes a block left open at the end of the file and ignores a stray
    '}' (and a block keyword without its block), with a log line each."""
    loaded = load_text(tmp_path, "global_defs {\n router_id x\n")
    assert loaded.ok and loaded.config.global_defs.router_id == "x"
    assert any("not closed" in m and "closed at the end" in m
               for m in messages(loaded, "warning"))
    loaded = load_text(tmp_path, "global_defs {\n}\n}\n")
    assert loaded.ok
    assert any(m.startswith("3: '}' without") for m in messages(loaded, "warning"))
    # a block keyword without '{': its block is the lines up to the next '}'
    loaded = load_text(tmp_path, "virtual_server 10.0.0.1 80\n delay_loop 6\n protocol TCP\n"
                                 " real_server 10.0.1.1 80 {\n }\n}\n")
    assert loaded.ok, messages(loaded)
    (vs,) = loaded.config.virtual_servers
    assert (vs.key, vs.delay_loop, len(vs.real_servers)) == ("[10.0.0.1]:tcp:80", 6, 1)
    warns = messages(loaded, "warning")
    assert any(m.startswith("1: 'virtual_server' has no '{'") for m in warns), warns


def test_global_defs_values_and_defaults(tmp_path):
    loaded = load_text(tmp_path, """
        global_defs {
            notification_email {
                a@b.c
                d@e.f
            }
            smtp_server 127.0.0.1 2525
            router_id LB1
            vrrp_mcast_group4 224.0.0.19
            vrrp_garp_master_delay 2
            vrrp_version 3
            script_user nobody nogroup
            enable_script_security
            lvs_sync_daemon eth0 VI_1 id 7 maxlen 1400 port 8848 ttl 2 group 224.0.0.81
            lvs_timeouts tcp 900 tcpfin 120 udp 300
            lvs_flush
            lvs_flush_on_stop VS
        }
    """ + VRRP.format(body=""))
    assert loaded.ok, messages(loaded)
    g = loaded.config.global_defs
    assert g.notification_email == ("a@b.c", "d@e.f")
    assert (g.smtp_server, g.smtp_port, g.router_id) == ("127.0.0.1", 2525, "LB1")
    assert g.vrrp_mcast_group4 == "224.0.0.19" and g.vrrp_mcast_group6 == "ff02::12"
    assert (g.script_user, g.script_group, g.enable_script_security) == ("nobody", "nogroup", True)
    sd = g.lvs_sync_daemon
    assert (sd.interface, sd.vrrp_instance, sd.syncid, sd.maxlen, sd.port, sd.ttl, sd.group) == (
        "eth0", "VI_1", 7, 1400, 8848, 2, "224.0.0.81")
    assert (g.lvs_timeout_tcp, g.lvs_timeout_tcpfin, g.lvs_timeout_udp) == (900, 120, 300)
    assert g.lvs_flush and g.lvs_flush_on_stop == "VS"
    inst = instance(loaded)
    # instance defaults come from global_defs
    assert inst.version == 3 and inst.garp_master_delay == 2 and inst.garp_master_repeat == 5


def test_vrrp_instance_defaults(tmp_path):
    inst = instance(load_text(tmp_path, VRRP.format(body="")))
    assert inst.state is None and inst.priority == 100 and inst.advert_int == 1.0
    assert inst.version == 2 and inst.family == 4 and not inst.nopreempt
    assert inst.accept is True and inst.unicast_ttl == 255 and inst.preempt_delay == 0
    assert inst.virtual_ipaddress[0].prefixlen == 32


def test_vrrp_instance_full(tmp_path):
    loaded = load_text(tmp_path, """
        vrrp_script chk { script "/bin/true"
        }
        track_file tf { file /tmp/tf }
        vrrp_track_process tp { process nginx }
        vrrp_instance VI_1 {
            state BACKUP
            interface eth0
            use_vmac vrrp51
            virtual_router_id 51
            priority 150
            advert_int 2
            nopreempt
            preempt_delay 30
            authentication {
                auth_type PASS
                auth_pass secret12345
            }
            unicast_src_ip 10.0.0.2
            unicast_peer {
                10.0.0.3 min_ttl 250 max_ttl 255
            }
            track_interface {
                eth1
                eth2 weight -20
            }
            track_script {
                chk weight 10 reverse
            }
            track_file { tf }
            track_process { tp weight 5 }
            virtual_ipaddress {
                10.0.0.1/24 brd 10.0.0.255 dev eth1 scope link label eth1:vip
                10.0.0.5
            }
            virtual_ipaddress_excluded { fd00::1/64 }
            virtual_routes {
                10.9.0.0/16 via 10.0.0.254 dev eth1 metric 5
                src 10.0.0.1 to 10.8.0.0/16 dev eth1 table 100
                blackhole 10.7.0.0/16
            }
            virtual_rules {
                from 10.0.0.0/24 table 100 priority 10
                to 10.1.0.0/16 fwmark 0x10 table main
            }
            garp_master_refresh 60
            notify_master "/usr/bin/notify master"
            notify /usr/bin/notify-all
            notify_fifo /run/fifo
        }
    """)
    assert loaded.ok, messages(loaded)
    assert any("truncated to 8" in m for m in messages(loaded, "warning"))
    inst = instance(loaded)
    assert inst.use_vmac == "vrrp51" and inst.nopreempt and inst.preempt_delay == 30
    assert inst.authentication.auth_type == "PASS" and inst.authentication.auth_pass == "secret12"
    assert inst.unicast_peer[0].min_ttl == 250
    assert [(t.name, t.weight) for t in inst.track_interface] == [("eth1", None), ("eth2", -20)]
    assert inst.track_script[0].weight == 10 and inst.track_script[0].reverse
    vip = inst.virtual_ipaddress[0]
    assert (vip.address, vip.prefixlen, vip.broadcast, vip.dev, vip.scope, vip.label) == (
        "10.0.0.1", 24, "10.0.0.255", "eth1", "link", "eth1:vip")
    assert inst.virtual_ipaddress_excluded[0].family == 6
    r1, r2, r3 = inst.virtual_routes
    assert (r1.dst, r1.via, r1.dev, r1.metric) == ("10.9.0.0/16", "10.0.0.254", "eth1", 5)
    assert (r2.src, r2.dst, r2.table) == ("10.0.0.1", "10.8.0.0/16", "100")
    assert r3.blackhole and r3.dst == "10.7.0.0/16"
    ru1, ru2 = inst.virtual_rules
    assert (ru1.src, ru1.table, ru1.priority) == ("10.0.0.0/24", "100", 10)
    assert (ru2.dst, ru2.fwmark, ru2.table) == ("10.1.0.0/16", "0x10", "main")
    assert inst.notify.notify_master.argv == ("/usr/bin/notify", "master")
    assert inst.notify.notify.cmd == "/usr/bin/notify-all"
    assert inst.notify.notify_fifo == "/run/fifo"
    assert inst.garp_master_refresh == 60


def test_vip_syntax_problems_are_repaired_as_keepalived(tmp_path):
    """keepalived keeps a VIP whose option it cannot read, uses the full prefix for an
    invalid length and skips an invalid address; each with a warning naming the token."""
    loaded = load_text(tmp_path, VRRP.format(body="virtual_ipaddress_excluded {\n"
                                                   " 10.0.0.9 bogus x\n 10.0.0.300\n"
                                                   " 10.0.0.8/40\n}"))
    assert loaded.ok
    warns = messages(loaded, "warning")
    assert any("unexpected 'bogus'" in m and "options ignored" in m for m in warns)
    assert any("10.0.0.300" in m and "skipped" in m for m in warns)
    assert any("prefix length 40" in m and "full prefix" in m for m in warns)
    vips = instance(loaded).virtual_ipaddress_excluded
    assert [(x.address, x.prefixlen) for x in vips] == [("10.0.0.9", 32), ("10.0.0.8", 32)]


def test_vrrp_script_and_trackers(tmp_path):
    loaded = load_text(tmp_path, """
        vrrp_script chk_nginx {
            script "/usr/bin/pgrep -x 'nginx master'"
            interval 2
            timeout 1
            weight -5 reverse
            fall 2
            rise 3
            user nobody
            init_fail
        }
        track_file manual {
            file /run/manual
            weight -10
            init_file 5 overwrite
        }
        vrrp_track_process nginx {
            process nginx -g daemon
            param_match partial
            quorum 2
            weight 20
            delay 1.5
        }
    """)
    assert loaded.ok, messages(loaded)
    s = loaded.config.vrrp_scripts[0]
    assert s.script.argv == ("/usr/bin/pgrep", "-x", "nginx master")
    assert (s.interval, s.timeout, s.weight, s.weight_reverse, s.fall, s.rise) == (
        2, 1, -5, True, 2, 3)
    assert s.user == "nobody" and s.init_fail
    tf = loaded.config.track_files[0]
    assert (tf.file, tf.weight, tf.init_file, tf.init_value, tf.init_overwrite) == (
        "/run/manual", -10, True, 5, True)
    tp = loaded.config.track_processes[0]
    assert (tp.process, tp.parameters, tp.param_match, tp.quorum, tp.weight, tp.delay) == (
        "nginx", "-g daemon", "partial", 2, 20, 1.5)


def test_sync_group(tmp_path):
    text = VRRP.format(body="") + VRRP.format(body="").replace("VI_1", "VI_2").replace(
        "51", "52") + """
        vrrp_sync_group G1 {
            group {
                VI_1
                VI_2
            }
            notify_master "/bin/echo group master"
        }
    """
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    sg = loaded.config.vrrp_sync_groups[0]
    assert sg.group == ("VI_1", "VI_2") and sg.notify.notify_master.argv[-1] == "master"


LVS = """
virtual_server_group WEB {
    10.1.1.1 80
    10.1.2.1-10 8080
    10.1.3.0/30 443
    fwmark 7
}
virtual_server 192.168.3.253 80 {
    delay_loop 6
    lvs_sched wrr
    lvs_method DR
    persistence_timeout
    protocol TCP
    quorum 2
    hysteresis 1
    sorry_server 192.168.3.100 8080
    inhibit_on_failure
    sh-port
    real_server 192.168.3.1 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 10
            nb_get_retry 3
            delay_before_retry 2
            connect_port 8080
        }
    }
    real_server 192.168.3.2 80 {
        lvs_method NAT
        inhibit_on_failure off
        HTTP_GET {
            url {
                path /health
                digest 9b3a0c85a887a256d6939da88aabd8cd
                status_code 200-299,301
            }
            url { path /x }
            virtualhost www.example.com
            http_protocol 1.1
        }
        SSL_GET {
            url { path / }
            enable_sni
        }
        MISC_CHECK {
            misc_path "/usr/bin/check --fast"
            misc_dynamic
        }
        SMTP_CHECK { helo_name lb.example.com }
        DNS_CHECK { type A
            name www.example.com }
        UDP_CHECK { payload 01 2 ff
            require_reply 0a0b }
        PING_CHECK { }
    }
}
virtual_server fwmark 12 {
    lb_algo mh
    mh-port
    mh-fallback
    real_server 10.2.0.1 { weight 5 }
}
virtual_server group WEB {
    lb_kind TUN type gue port 6080
    real_server 10.3.0.1 80 { }
}
"""


def test_lvs_blocks_aliases_and_inheritance(tmp_path):
    loaded = load_text(tmp_path, LVS)
    assert loaded.ok, messages(loaded)
    grp = loaded.config.virtual_server_groups[0]
    e = grp.entries
    assert (e[0].address, e[0].port, e[0].last) == ("10.1.1.1", 80, None)
    assert (e[1].address, e[1].last, e[1].port) == ("10.1.2.1", "10.1.2.10", 8080)
    assert (e[2].address, e[2].last) == ("10.1.3.1", "10.1.3.2")
    assert e[3].fwmark == 7
    vs, fw, grpvs = loaded.config.virtual_servers
    assert (vs.lb_algo, vs.lb_kind, vs.persistence_timeout, vs.quorum, vs.hysteresis) == (
        "wrr", "DR", 360, 2, 1)
    assert vs.sched_flags == ("sh-port",) and vs.key == "[192.168.3.253]:tcp:80"
    # DR: keepalived resets the sorry server's port to the virtual server's
    assert (vs.sorry_server.address, vs.sorry_server.port) == ("192.168.3.100", 80)
    rs1, rs2 = vs.real_servers
    assert rs1.lvs_method == "DR" and rs1.inhibit_on_failure is True and rs1.weight == 3
    tcp = rs1.checkers[0]
    assert (tcp.type, tcp.connect_timeout, tcp.retry, tcp.delay_before_retry) == (
        "TCP_CHECK", 10, 3, 2)
    assert (tcp.connect_ip, tcp.connect_port, tcp.delay_loop) == ("192.168.3.1", 8080, 6)
    assert rs2.lvs_method == "NAT" and rs2.inhibit_on_failure is False
    http, ssl, misc, smtp, dns, udp, ping = rs2.checkers
    assert http.urls[0].status_code == ((200, 299), (301, 301)) and len(http.urls) == 2
    assert http.virtualhost == "www.example.com" and http.http_protocol == "1.1"
    # keepalived's HTTP_GET default delay_before_retry is 3 s (TCP_CHECK's 1 s)
    assert (http.connect_timeout, http.retry, http.delay_before_retry) == (5.0, 1, 3.0)
    assert ssl.type == "SSL_GET" and ssl.enable_sni
    assert misc.misc_path.argv == ("/usr/bin/check", "--fast") and misc.misc_dynamic
    assert misc.misc_timeout == 6
    assert smtp.helo_name == "lb.example.com"
    assert (dns.dns_type, dns.dns_name) == ("A", "www.example.com")
    # keepalived's hex: groups of two digits, a lone digit a byte of its own
    assert (udp.payload, udp.require_reply) == (b"\x01\x02\xff", b"\x0a\x0b")
    assert ping.type == "PING_CHECK"
    assert fw.fwmark == 12 and fw.sched_flags == ("mh-port", "mh-fallback") and fw.key == "FWM 12"
    assert fw.real_servers[0].port is None and fw.delay_loop == 60 and fw.lb_kind == "NAT"
    assert grpvs.group == "WEB" and grpvs.lb_kind == "TUN" and grpvs.tunnel_type == "gue port 6080"


def test_vs_defaults(tmp_path):
    loaded = load_text(tmp_path, "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n"
                                 "  TCP_CHECK {\n  }\n }\n}\n")
    assert loaded.ok, messages(loaded)
    vs = loaded.config.virtual_servers[0]
    # keepalived: a virtual server without `protocol` is UDP (with a log line)
    assert (vs.lb_algo, vs.lb_kind, vs.protocol, vs.delay_loop, vs.persistence_timeout) == (
        "wlc", "NAT", "UDP", 60, 0)
    assert any("no protocol set; defaulting to UDP" in m for m in messages(loaded, "warning"))
    assert (vs.quorum, vs.hysteresis, vs.alpha, vs.omega, vs.inhibit_on_failure) == (
        1, 0, False, False, False)
    rs = vs.real_servers[0]
    assert rs.weight == 1 and rs.lvs_method == "NAT"
    c = rs.checkers[0]
    # the checker carries keepalived's effective values; warmup defaults to the delay_loop
    assert (c.connect_ip, c.connect_port, c.connect_timeout, c.retry, c.delay_before_retry,
            c.delay_loop, c.warmup) == ("10.0.1.1", 80, 5.0, 1, 1.0, 60, 60)


def test_bad_values_are_warnings_with_positions(tmp_path):
    """keepalived logs a bad value and runs on with the default: so do we."""
    loaded = load_text(tmp_path, """
        virtual_server 10.0.0.1 80 {
            lb_algo fastest
            lb_kind BRIDGE
            protocol ICMP
            real_server 10.0.1.1 80 {
                lvs_method TUN type gue port x
            }
            real_server 10.0.1.2 80 {
                weight -1
                HTTP_GET {
                    url { digest xyz }
                }
            }
        }
    """)
    assert loaded.ok, messages(loaded)
    errs = messages(loaded, "warning")
    assert any(m.startswith("3: lb_algo: unknown scheduler 'fastest'") for m in errs), errs
    assert any(m.startswith("4: lb_kind:") for m in errs)
    assert any(m.startswith("5: protocol:") for m in errs)
    assert any(m.startswith("7: lvs_method: 'x' is not an integer") for m in errs), errs
    assert any(m.startswith("10: weight:") for m in errs)
    assert any(m.startswith("12: digest:") for m in errs)
    vs = loaded.config.virtual_servers[0]
    assert (vs.lb_algo, vs.lb_kind) == ("wlc", "NAT")
    assert [rs.weight for rs in vs.real_servers] == [1, 1]


def test_unknown_unsupported_obsolete_keywords_warn(tmp_path):
    loaded = load_text(tmp_path, """
        global_defs {
            frobnicate 1
            enable_snmp_vrrp
        }
        virtual_server 10.0.0.1 80 {
            nat_mask 255.255.255.0
            real_server 10.0.1.1 80 { }
        }
        linkbeat_interfaces { eth0 }
    """)
    assert loaded.ok, messages(loaded)
    warns = messages(loaded, "warning")
    assert any(m.startswith("3: unknown keyword 'frobnicate'") for m in warns), warns
    assert any(m.startswith("4: 'enable_snmp_vrrp'") and "not supported" in m for m in warns)
    assert any(m.startswith("7: 'nat_mask'") and "obsolete" in m for m in warns)
    assert any(m.startswith("10: 'linkbeat_interfaces'") for m in warns)


def test_block_given_a_value(tmp_path):
    loaded = load_text(tmp_path, VRRP.format(body="track_script chk"))
    # keepalived (2.2.7 checked): the list block reads the next lines, here the
    # virtual_ipaddress keyword, its '{' and the VIP, as track scripts, up to its '}'
    warns = messages(loaded, "warning")
    assert any("'track_script' has no '{'" in m for m in warns), warns
    assert any("track_script '10.0.0.1' is not defined" in m for m in warns), warns
    assert instance(loaded).virtual_ipaddress == ()


def test_udp_check_hex_and_dns_types_as_keepalived(tmp_path):
    loaded = load_text(tmp_path, """
        virtual_server 10.0.0.1 53 {
            protocol UDP
            real_server 10.0.1.1 53 {
                UDP_CHECK {
                    payload 0x01
                    require_reply 1X 0203
                }
                DNS_CHECK {
                    type DNSKEY
                }
                DNS_CHECK {
                    type RRSIG
                }
            }
        }
    """)
    assert loaded.ok, messages(loaded)
    udp, k, r = loaded.config.virtual_servers[0].real_servers[0].checkers
    assert udp.payload is None  # '0x' is not keepalived's hex: ignored with a warning
    assert any("payload: '0x01' is not a hex string; ignored" in m
               for m in messages(loaded, "warning"))
    assert (udp.require_reply, udp.require_reply_mask) == (b"\x10\x02\x03", b"\x0f\x00\x00")
    assert (k.dns_type, r.dns_type) == ("DNSKEY", "RRSIG")


def test_missing_value_error_or_warning_as_keepalived(tmp_path):
    """keepalived's parser exits on most keywords without their value; a few handlers
    check for it and ignore the line (router_id, virtualhost ...)."""
    loaded = load_text(tmp_path, "global_defs {\n router_id\n}\n")
    assert loaded.ok and any(m.startswith("2: router_id: needs a value; ignored")
                             for m in messages(loaded, "warning")), messages(loaded)
    loaded = load_text(tmp_path, VRRP.format(body="priority"))
    assert any(m.startswith("5: priority: needs a value") for m in messages(loaded, "error"))


def test_smtp_check_host_blocks_are_checkers(tmp_path):
    """keepalived (deprecated, accepted): each SMTP_CHECK host block is a checker of its
    own (timeout from the real/virtual server); the main one keeps its connection options
    if it has any, else takes the first host's."""
    loaded = load_text(tmp_path, """
        virtual_server 10.0.0.1 25 {
            protocol TCP
            real_server 10.0.1.1 25 {
                SMTP_CHECK {
                    connect_timeout 10
                    helo_name a.example
                    host {
                        connect_ip 10.0.2.1
                        connect_port 587
                    }
                }
            }
            real_server 10.0.1.2 25 {
                SMTP_CHECK {
                    host {
                        connect_ip 10.0.2.2
                    }
                }
            }
        }
    """)
    assert loaded.ok, messages(loaded)
    rs1, rs2 = loaded.config.virtual_servers[0].real_servers
    got = [(c.connect_ip, c.connect_port, c.connect_timeout, c.helo_name) for c in rs1.checkers]
    assert got == [("10.0.1.1", 25, 10, "a.example"), ("10.0.2.1", 587, 5.0, "a.example")]
    assert [(c.connect_ip, c.connect_port) for c in rs2.checkers] == [("10.0.2.2", 25)]
    assert any("host blocks are deprecated" in m for m in messages(loaded, "warning"))


def test_invalid_persistence_granularity_is_ignored(tmp_path):
    loaded = load_text(tmp_path, """
        virtual_server 10.0.0.1 80 {
            protocol TCP
            persistence_timeout 30
            persistence_granularity 255.255.x.0
            real_server 10.0.1.1 80 { }
        }
        virtual_server fd00::1 80 {
            protocol TCP
            persistence_timeout 30
            persistence_granularity 64
            real_server fd00::2 80 { }
        }
    """)
    assert loaded.ok, messages(loaded)
    v4, v6 = loaded.config.virtual_servers
    assert (v4.persistence_granularity, v6.persistence_granularity) == (None, "64")
    assert any("invalid persistence_granularity '255.255.x.0'; ignored" in m
               for m in messages(loaded, "warning"))


def test_sorry_server_repairs(tmp_path):
    loaded = load_text(tmp_path, """
        virtual_server 10.0.0.1 80 {
            protocol TCP
            lb_kind DR
            sorry_server 10.0.9.9 8080
            real_server 10.0.1.1 80 { }
        }
        virtual_server 10.0.0.2 80 {
            protocol TCP
            sorry_server fd00::9 80
            real_server 10.0.1.1 80 { }
        }
    """)
    assert loaded.ok, messages(loaded)
    dr, nat = loaded.config.virtual_servers
    assert dr.sorry_server.port == 80 and nat.sorry_server is None
    warns = messages(loaded, "warning")
    assert any("sorry_server port 8080 reset to 80 (DR)" in m for m in warns), warns
    assert any("sorry_server fd00::9 is not of the virtual server's family" in m
               for m in warns)


def test_fwmark_limits_are_the_same_for_vs_group_and_checker(tmp_path):
    """keepalived takes 0..UINT_MAX for a virtual server's, a group entry's and a
    checker's fwmark (co_fwmark_handler, alloc_vs, alloc_vsg_entry); one bound past it
    is refused by all three alike."""
    text = """
        virtual_server_group G {{
            fwmark {m}
        }}
        virtual_server fwmark {m} {{
            protocol TCP
            real_server 10.2.0.1 {{
                TCP_CHECK {{ connect_port 80
                    fwmark {m} }}
                SMTP_CHECK {{ host {{ connect_ip 10.2.0.9
                    fwmark {m} }} }}
            }}
        }}
    """
    for mark in (0, 4294967295):
        loaded = load_text(tmp_path, text.format(m=mark))
        assert loaded.ok and not messages(loaded, "error"), messages(loaded)
        assert loaded.config.virtual_server_groups[0].entries[0].fwmark == mark
        vs = loaded.config.virtual_servers[0]
        assert vs.fwmark == mark
        tcp, smtp = vs.real_servers[0].checkers
        assert (tcp.fwmark, smtp.fwmark) == (mark, mark), (tcp, smtp)
    loaded = load_text(tmp_path, text.format(m=4294967296))
    bad = {m.split(":")[0] for m in messages(loaded) if "4294967296" in m}
    assert bad == {"3", "5"}, messages(loaded)  # the virtual server is skipped whole
    loaded = load_text(tmp_path, text.format(m=4294967296).replace("fwmark 4294967296 {",
                                                                   "fwmark 1 {"))
    bad = {m.split(":")[0] for m in messages(loaded) if "4294967296" in m}
    assert bad == {"3", "9", "11"}, messages(loaded)
    tcp, smtp = loaded.config.virtual_servers[0].real_servers[0].checkers
    assert (tcp.fwmark, smtp.fwmark) == (None, None)


MISSING_BRACES = """
virtual_server 10.0.0.1 80
{
    protocol TCP
    real_server 10.0.1.1 80
        weight 3
    }
    real_server 10.0.1.2 80 {
        weight 4
        TCP_CHECK
            connect_port 8080
        }
    }
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress
        10.9.9.1
        10.9.9.2
    }
    unicast_peer
    {
        10.9.9.7
    }
    priority 120
}
"""


def test_block_keyword_without_its_brace_takes_the_next_lines(tmp_path):
    """keepalived (lib/parser.c) splits '{' and '}' off as lines of their own; a block
    keyword whose next line is not '{' reads the lines up to the next '}' as its block
    (process_stream: 'Missing {'; alloc_value_block: '{ missing' for list blocks), and
    a '{' alone on the next line is the ordinary case. Checked against keepalived 2.2.7
    (its VS/RS and VIP/peer lists for this same text)."""
    loaded = load_text(tmp_path, MISSING_BRACES)
    assert loaded.ok, messages(loaded)
    (vs,) = loaded.config.virtual_servers
    assert vs.protocol == "TCP"
    rs1, rs2 = vs.real_servers
    assert (rs1.address, rs1.weight, rs2.address, rs2.weight) == ("10.0.1.1", 3, "10.0.1.2", 4)
    (tcp,) = rs2.checkers
    assert (tcp.type, tcp.connect_port) == ("TCP_CHECK", 8080)
    inst = instance(loaded)
    assert [x.address for x in inst.virtual_ipaddress] == ["10.9.9.1", "10.9.9.2"]
    assert [p.address for p in inst.unicast_peer] == ["10.9.9.7"]
    assert inst.priority == 120  # the instance is not closed early by the VIPs' '}'
    warned = sorted(int(m.split(":")[0]) for m in messages(loaded, "warning")
                    if "has no '{'" in m)
    assert warned == [5, 10, 18], messages(loaded)  # not 2 nor 22: '{' on the next line


def test_block_keyword_without_brace_at_the_end_of_the_file(tmp_path):
    loaded = load_text(tmp_path, "global_defs {\n router_id x\n}\nvrrp_script chk\n")
    assert any("'vrrp_script' has no '{' and the file ends" in m
               for m in messages(loaded, "warning")), messages(loaded)


def test_a_plain_keyword_is_not_taken_for_a_block(tmp_path):
    """Only keywords that take a block open one: a value keyword's next line is its
    sibling (keepalived's leaf handlers never read further lines)."""
    loaded = load_text(tmp_path, VRRP.format(body="priority 99\n    advert_int 2"))
    assert loaded.ok and not messages(loaded, "warning"), messages(loaded)
    assert (instance(loaded).priority, instance(loaded).advert_int) == (99, 2)


def test_a_list_block_takes_no_value_of_its_own(tmp_path):
    """keepalived: 'Block track_script has extra parameters chk ...', then reads the
    list as usual (2.2.7 checked)."""
    loaded = load_text(tmp_path, VRRP.format(body="track_interface eth1 {\n eth2\n}"))
    assert loaded.ok, messages(loaded)
    assert [t.name for t in instance(loaded).track_interface] == ["eth2"]
    assert any(m.startswith("5: 'track_interface' takes no value before its block: 'eth1'")
               for m in messages(loaded, "warning")), messages(loaded)


# a leaf's '{' in global_defs, in an instance (on the keyword's line) and in a virtual
# server (shared with tests/netns/test_conf_compat.py, which runs keepalived on it)
LEAF_BRACES = (Path(__file__).parent.parent / "fixtures" / "leaf_braces.conf").read_text()


def test_a_brace_after_a_leaf_keyword_is_ignored_as_keepalived(tmp_path):
    """keepalived's process_stream: a keyword without sub-keywords followed by '{' (on its
    line or the next) logs "Unexpected '{' - ignoring" and skips the '{' alone: the lines
    after it are the enclosing block's and the next '}' ends that block, so what follows
    is read one level up. keepalived 2.2.7 on this text (tests/netns/test_conf_compat.py
    compares the two): Unexpected '{' at lines 4, 12 and 18; vrrp_version, nopreempt
    and lb_kind unknown at the top level."""
    loaded = load_text(tmp_path, LEAF_BRACES)
    assert loaded.ok, messages(loaded)
    g = loaded.config.global_defs
    assert (g.vrrp_garp_master_delay, g.vrrp_garp_master_repeat) == (3, 4)
    assert g.vrrp_version == 2  # after the global_defs's early end: not read
    inst = instance(loaded)
    assert (inst.priority, inst.advert_int, inst.nopreempt) == (90, 2, False)
    (vs,) = loaded.config.virtual_servers
    assert (vs.delay_loop, vs.lb_algo, vs.lb_kind) == (7, "wrr", "NAT")
    assert [rs.weight for rs in vs.real_servers] == [3]
    warns = messages(loaded, "warning")
    ignored = sorted(int(m.split(":")[0]) for m in warns if "which takes no block" in m)
    assert ignored == [4, 12, 18], warns
    assert any(m.startswith("4: '{' after 'vrrp_garp_master_delay'") and
               "read as part of global_defs and the next '}' ends it" in m for m in warns)
    assert any(m.startswith("13: 'nopreempt' does not belong in the top level")
               for m in warns), warns
    assert not messages(loaded, "error")


def test_a_leaf_brace_in_a_checker_and_a_url(tmp_path):
    loaded = load_text(tmp_path, """\
        virtual_server 10.0.0.1 80 {
            protocol TCP
            real_server 10.0.1.1 80 {
                HTTP_GET {
                    url {
                        path /a {
                            status_code 201
                        }
                    connect_timeout 4 {
                        retry 2
                    }
                    delay_loop 9
                }
                weight 5
            }
        }
    """)
    assert loaded.ok, messages(loaded)
    ((rs,),) = [vs.real_servers for vs in loaded.config.virtual_servers]
    (chk,) = rs.checkers
    assert [(u.path, u.status_code) for u in chk.urls] == [("/a", ((201, 201),))]
    assert (chk.connect_timeout, chk.retry) == (4, 2)
    # keepalived 2.2.7 the same: the checker ends at connect_timeout's '}', so delay_loop
    # 9 is the real server's, and the real server ends where the checker would have:
    # weight 5 is the virtual server's, the default of its real servers
    assert (rs.delay_loop, rs.weight) == (9, 5)


def test_an_unsupported_block_keyword_without_its_brace_takes_the_next_lines(tmp_path):
    """keepalived reads a block keyword's lines up to the next '}' as its block also for
    the blocks director does not implement (garp_group, bfd_instance, track_bfd,
    BFD_CHECK, linkbeat_interfaces ...): they are ignored whole, and what follows is
    read in its right place. keepalived 2.2.7: "Missing '{'" at 1, track bfd bfd1 read
    as an item of VI_1's track_bfd."""
    loaded = load_text(tmp_path, """\
        garp_group
            garp_interval 2
            interface eth0
        }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            track_bfd
                bfd1
            }
            priority 90
        }
        virtual_server 10.0.0.1 80 {
            protocol TCP
            real_server 10.0.1.1 80 {
                BFD_CHECK
                    name bfd1
                }
                weight 4
            }
        }
        linkbeat_interfaces
            eth0
        }
    """)
    assert loaded.ok, messages(loaded)
    assert instance(loaded).priority == 90
    (vs,) = loaded.config.virtual_servers
    assert [rs.weight for rs in vs.real_servers] == [4]
    warns = messages(loaded, "warning")
    assert sorted(int(m.split(":")[0]) for m in warns if "has no '{'" in m) == \
        [1, 8, 16, 22], warns
    for line, name in ((1, "garp_group"), (8, "track_bfd"), (16, "BFD_CHECK"),
                       (22, "linkbeat_interfaces")):
        assert any(m.startswith(f"{line}: '{name}'") and "not supported yet" in m
                   for m in warns), (name, warns)
    assert not any("unknown keyword" in m or "does not belong" in m or "without a" in m
                   for m in warns), warns
