"""conf/incremental.py: a reload that reads again only the changed blocks gives what a
full parse of the same file gives (model, warnings, errors with file:line, in order),
over generated configs and their mutations, and it does reuse what it can."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from conf import incremental as inc
from conf import load


def vs_block(v: int, n_rs: int = 3, extra: str = "") -> list[str]:
    out = [f"virtual_server 192.0.2.{v + 1} {8000 + v} {{", "    delay_loop 6",
           "    lb_algo wrr", "    lb_kind NAT", "    protocol TCP", f"    quorum {1 + v % 2}"]
    if v % 5 == 1:
        out += ["    sorry_server 198.51.100.9 80", "    alpha"]
    if extra:
        out.append(extra)
    for r in range(n_rs):
        out += [f"    real_server 203.0.113.{r + 1} 80 {{", f"        weight {1 + r % 3}"]
        if (v + r) % 3 == 0:
            out += ["        TCP_CHECK {", "            connect_timeout 3",
                    "            connect_port 80", "        }"]
        elif (v + r) % 3 == 1:
            out += ["        HTTP_GET {", "            url {", "                path /health",
                    "                status_code 200", "            }", "        }"]
        out.append("    }")
    out.append("}")
    return out


def base(n_vs: int = 12) -> list[str]:
    out = ["! a comment before anything", "global_defs {", "    router_id T1",
           "    lvs_timeouts tcp 100", "}", "",
           "vrrp_instance VI_1 {", "    state MASTER", "    interface lo",
           "    virtual_router_id 51", "    priority 100",
           "    virtual_ipaddress {", "        192.0.2.200", "    }", "}",
           "virtual_server_group G1 {", "    192.0.2.250 80", "}"]
    for v in range(n_vs):
        out += vs_block(v, extra="    frobnicate 1" if v == 4 else "")  # a warning each
        out.append("")
    out += ["virtual_server group G1 {", "    protocol TCP",
            "    real_server 203.0.113.50 80 {", "    }", "}",
            "track_file TF1 {", "    file /tmp/director-test-tf1", "}",
            "virtual_server 192.0.2.240 80 {", "    protocol TCP",
            "    real_server 203.0.113.60 80 {", "        FILE_CHECK {",
            "            track_file TF1", "        }", "    }", "}"]
    return out


def check(path: Path, lines: list[str], want_reuse: bool | None = None,
          newline: bool = True) -> None:
    path.write_text("\n".join(lines) + ("\n" if newline else ""))
    got = inc.load_incremental(str(path), config_id="n1", check_host=False)
    mode, reused = inc.last_mode, inc.last_reused
    assert mode in ("full", "incremental"), mode  # not an internal error's fallback
    full = load(str(path), config_id="n1", check_host=False)
    assert [str(d) for d in got.diags.items] == [str(d) for d in full.diags.items]
    assert got.ok == full.ok
    assert got.config == full.config
    if want_reuse is True:
        assert mode == "incremental" and reused > 0, (mode, reused)
    elif want_reuse is False:
        assert reused == 0, reused


@pytest.fixture(autouse=True)
def fresh():
    inc.forget()
    yield
    inc.forget()


def test_first_load_full_then_reuse(tmp_path):
    p = tmp_path / "k.conf"
    lines = base()
    check(p, lines, want_reuse=False)
    check(p, lines, want_reuse=True)
    assert inc.last_reused == 14  # the 14 virtual_server blocks; the rest read again


def test_one_weight_changed(tmp_path):
    p = tmp_path / "k.conf"
    lines = base()
    check(p, lines)
    i = lines.index("        weight 2")
    check(p, lines[:i] + ["        weight 9"] + lines[i + 1:], want_reuse=True)
    assert inc.last_reused == 13


def test_reused_objects_are_the_old_ones(tmp_path):
    p = tmp_path / "k.conf"
    lines = base()
    p.write_text("\n".join(lines) + "\n")
    first = inc.load_incremental(str(p), config_id="n1", check_host=False).config
    i = lines.index("        weight 2")
    p.write_text("\n".join(lines[:i] + ["        weight 9"] + lines[i + 1:]) + "\n")
    second = inc.load_incremental(str(p), config_id="n1", check_host=False).config
    assert first is not None and second is not None
    same = [a is b for a, b in zip(first.virtual_servers, second.virtual_servers, strict=True)]
    assert same.count(False) == 1 and sum(same) == len(same) - 1


@pytest.mark.parametrize("mutate", [
    "add_rs", "remove_rs", "add_vs_end", "add_vs_middle", "remove_vs", "global_defs",
    "shift_top", "blank_between", "bad_value", "missing_value", "unbalanced_open",
    "unbalanced_close", "duplicate_vs", "no_brace_keyword", "comment_change",
    "duplicate_instance", "no_trailing_newline", "empty", "quoted_script", "vs_no_rs",
    "track_file_gone",
])
def test_mutations_match_a_full_parse(tmp_path, mutate):
    p = tmp_path / "k.conf"
    lines = base()
    check(p, lines)
    check(p, lines)  # a reload of the same file
    i = lines.index("virtual_server 192.0.2.4 8003 {")
    w = lines.index("        weight 3", i)
    newline = True
    if mutate == "add_rs":
        new = lines[:w + 1] + ["    }", "    real_server 203.0.113.99 80 {",
                               "        weight 4"] + lines[w + 1:]
    elif mutate == "remove_rs":
        j = lines.index("    real_server 203.0.113.2 80 {", i)
        k = lines.index("    }", j)
        new = lines[:j] + lines[k + 1:]
    elif mutate == "add_vs_end":
        new = lines + vs_block(40)
    elif mutate == "add_vs_middle":
        new = lines[:i] + vs_block(41) + lines[i:]
    elif mutate == "remove_vs":
        k = lines.index("}", i)
        new = lines[:i] + lines[k + 1:]
    elif mutate == "global_defs":
        new = [x.replace("router_id T1", "router_id T2") for x in lines]
    elif mutate == "shift_top":
        new = ["", "# two lines more"] + lines
    elif mutate == "blank_between":
        new = lines[:i] + [""] + lines[i:]
    elif mutate == "bad_value":
        new = lines[:w] + ["        weight -3"] + lines[w + 1:]
    elif mutate == "missing_value":
        new = lines[:w] + ["        weight"] + lines[w + 1:]
    elif mutate == "unbalanced_open":
        new = lines[:w] + ["        weight 3 {"] + lines[w + 1:]
    elif mutate == "unbalanced_close":
        new = lines[:w] + ["        weight 3 }"] + lines[w + 1:]
    elif mutate == "duplicate_vs":
        new = lines + vs_block(3)
    elif mutate == "no_brace_keyword":
        j = lines.index("        TCP_CHECK {", i)
        new = lines[:j] + ["        TCP_CHECK"] + lines[j + 1:]
    elif mutate == "comment_change":
        new = lines[:w] + ["        weight 3 # was 2"] + lines[w + 1:]
    elif mutate == "duplicate_instance":
        new = lines[:i] + ["vrrp_instance VI_1 {", "    interface lo",
                           "    virtual_router_id 52", "}"] + lines[i:]
    elif mutate == "no_trailing_newline":
        new, newline = lines, False
    elif mutate == "empty":
        new = []
    elif mutate == "quoted_script":
        new = lines[:w] + ['        notify_up "/bin/true {x}"'] + lines[w:]
    elif mutate == "track_file_gone":  # the reused FILE_CHECK loses its file: removed
        new = [x.replace("track_file TF1 {", "track_file TF2 {") for x in lines]
    elif mutate == "vs_no_rs":
        new = lines + ["virtual_server 192.0.2.77 80 {", "    protocol TCP", "}"]
    check(p, new, newline=newline)
    check(p, lines)  # and back
    check(p, lines, want_reuse=True)


def test_preprocessor_lines_read_in_full(tmp_path):
    p = tmp_path / "k.conf"
    lines = base()
    check(p, lines)
    check(p, ["$W=4"] + [x.replace("weight 3", "weight $W") for x in lines],
          want_reuse=False)
    assert inc.last_mode == "full"
    check(p, ["@n1 global_defs {", "    router_id X", "}"] + lines, want_reuse=False)
    (tmp_path / "more.conf").write_text("\n".join(vs_block(60)) + "\n")
    check(p, lines + ["include more.conf"], want_reuse=False)
    check(p, lines)
    check(p, lines, want_reuse=True)


def test_an_unreadable_file_is_the_same_error(tmp_path):
    p = tmp_path / "k.conf"
    check(p, base())
    p.unlink()
    got = inc.load_incremental(str(p), config_id="n1", check_host=False)
    full = load(str(p), config_id="n1", check_host=False)
    assert not got.ok and [str(d) for d in got.diags.items] == [
        str(d) for d in full.diags.items]


def test_random_edits_match_a_full_parse(tmp_path):
    """Random line edits (values, lines added and removed, braces) over several reloads
    in a row, each compared with a full parse of the same text."""
    rng = random.Random(13)
    p = tmp_path / "k.conf"
    lines = base(20)
    snippets = ["        weight 5", "    }", "}", "{", "    real_server 203.0.113.77 80 {",
                "        weight x", "", "# note", "    lb_algo rr", "    unknown_kw 1",
                "        inhibit_on_failure", "virtual_server 192.0.2.99 99 {",
                "    delay_loop", "        TCP_CHECK {"]
    check(p, lines)
    reused = 0
    for _ in range(60):
        cur = list(lines)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(cur))
            what = rng.random()
            if what < 0.4:
                cur[at] = rng.choice(snippets)
            elif what < 0.7:
                cur.insert(at, rng.choice(snippets))
            else:
                del cur[at]
        check(p, cur)
        reused += inc.last_reused
        if rng.random() < 0.5:
            check(p, lines)  # back to the base: the next edit starts from it
            reused += inc.last_reused
    assert reused > 0  # it did reuse, not only fall back


def seeded(p: Path, lines: list[str]):  # type: ignore[no-untyped-def]
    """A daemon's start: the seeded load (the parent), adopt and prime (the child)."""
    p.write_text("\n".join(lines) + "\n")
    loaded = load(str(p), config_id="n1", check_host=False, seed=True)
    inc.adopt(loaded.config)
    inc.prime()
    return loaded


@pytest.mark.parametrize("mutate", ["weight", "dup_vs", "remark", "unchanged"])
def test_the_first_reload_after_start_reuses_the_start_up_load(tmp_path, mutate):
    p = tmp_path / "k.conf"
    lines = base()
    if mutate == "dup_vs":  # validation merges the second into the first: not reused
        lines = lines + vs_block(2)
    if mutate == "remark":  # a block keyword without its '{' (the tree's remark): read again
        j = lines.index("        TCP_CHECK {", lines.index("virtual_server 192.0.2.6 8005 {"))
        lines = lines[:j] + ["        TCP_CHECK"] + lines[j + 1:]
    first = seeded(p, lines)
    assert first.ok
    new = lines
    if mutate != "unchanged":
        i = lines.index("        weight 2")
        new = lines[:i] + ["        weight 9"] + lines[i + 1:]
    check(p, new, want_reuse=True)
    want = {"weight": 13, "dup_vs": 12, "remark": 12, "unchanged": 14}[mutate]
    assert inc.last_mode == "incremental" and inc.last_reused == want
    check(p, lines, want_reuse=True)


def test_an_edit_before_the_child_primed_is_still_read_right(tmp_path):
    """The seed is the text the model came from, whatever the file says by then."""
    p = tmp_path / "k.conf"
    lines = base()
    p.write_text("\n".join(lines) + "\n")
    loaded = load(str(p), config_id="n1", check_host=False, seed=True)
    inc.adopt(loaded.config)
    i = lines.index("        weight 2")
    p.write_text("\n".join(lines[:i] + ["        weight 9"] + lines[i + 1:]) + "\n")
    inc.prime()
    check(p, lines[:i] + ["        weight 9"] + lines[i + 1:], want_reuse=True)
    assert inc.last_reused == 13


def test_no_seed_from_a_preprocessed_file_or_another_model(tmp_path):
    p = tmp_path / "k.conf"
    lines = base()
    seeded(p, ["$X=1"] + lines)
    check(p, ["$X=1"] + lines, want_reuse=False)
    inc.forget()
    seeded(p, lines)
    inc.forget()
    p.write_text("\n".join(lines) + "\n")
    loaded = load(str(p), config_id="n1", check_host=False, seed=True)
    other = load(str(p), config_id="n1", check_host=False)
    shifted = load_other(tmp_path, ["", ""] + lines)
    inc.adopt(shifted)  # not the model the seed was made with: refused
    inc.prime()
    check(p, lines, want_reuse=False)
    assert loaded.config == other.config


def load_other(tmp_path: Path, lines: list[str]):  # type: ignore[no-untyped-def]
    q = tmp_path / "other.conf"
    q.write_text("\n".join(lines) + "\n")
    return load(str(q), config_id="n1", check_host=False).config


def test_a_reload_logs_what_a_full_read_logs(tmp_path, caplog):
    """conf.load.reload(incremental=True), the checker child's: the same log lines,
    warnings of reused blocks included, and None on errors."""
    import logging

    from conf.load import reload

    p = tmp_path / "k.conf"
    lines = base()
    log = logging.getLogger("test.reload")
    caplog.set_level(logging.WARNING, logger="test.reload")
    for text in (lines, lines, lines[:-2] + ["        weight -1"] + lines[-2:],
                 lines + ["virtual_server 192.0.2.1 {", "    real_server", "}"]):
        p.write_text("\n".join(text) + "\n")
        caplog.clear()
        full = reload(str(p), "n1", False, log)
        want = [(r.levelname, r.getMessage()) for r in caplog.records]
        caplog.clear()
        got = reload(str(p), "n1", False, log, incremental=True)
        assert [(r.levelname, r.getMessage()) for r in caplog.records] == want
        assert got == full
        assert any("unknown keyword 'frobnicate'" in m for _, m in want)
    assert inc.last_mode == "incremental" and full is None  # the last one has an error


def test_an_internal_error_reads_the_whole_file_and_says_so(tmp_path, caplog, monkeypatch):
    import logging

    from conf.load import reload

    p = tmp_path / "k.conf"
    p.write_text("\n".join(base()) + "\n")
    log = logging.getLogger("test.reload")
    reload(str(p), "n1", False, log, incremental=True)
    monkeypatch.setattr(inc, "_remember", lambda *a: 1 / 0)
    caplog.set_level(logging.WARNING, logger="test.reload")
    got = reload(str(p), "n1", False, log, incremental=True)
    assert got == load(str(p), config_id="n1").config
    assert inc.last_mode == "error: ZeroDivisionError: division by zero"
    assert [r.getMessage() for r in caplog.records if "Reading only" in r.getMessage()] == [
        "Reading only the changed blocks failed (error: ZeroDivisionError: division by "
        "zero); the whole file was read"]


def test_random_same_length_edits_are_read_incrementally_and_right(tmp_path):
    """Edits that move no line (the incremental reader's own case): values, braces,
    keywords replaced in place, several reloads in a row, each against a full parse."""
    rng = random.Random(7)
    p = tmp_path / "k.conf"
    lines = base(24)
    snippets = ["        weight 5", "    }", "}", "{", "        weight x", "", "# note",
                "    lb_algo rr", "    unknown_kw 1", "        inhibit_on_failure",
                "    delay_loop", "        TCP_CHECK", "virtual_server 192.0.2.99 99 {",
                "        weight 3 {", "track_file TF1 {", "    quorum 99"]
    check(p, lines)
    cur = list(lines)
    modes = []
    for _ in range(80):
        for _ in range(rng.randint(1, 2)):
            cur[rng.randrange(len(cur))] = rng.choice(snippets)
        check(p, cur)
        modes.append(inc.last_mode)
        if rng.random() < 0.3:
            cur = list(lines)
    assert modes.count("incremental") > 20, modes  # it reused, not only fell back
