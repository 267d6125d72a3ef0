"""The preprocessor: comments, quotes, includes, conditionals, definitions, ~SEQ/~LST."""

from __future__ import annotations

from pathlib import Path

from helpers import load_text, messages

from conf.errors import Diagnostics
from conf.source import Quoted, Source, expand_braces, strip_comment, tokenize


def lines(tmp_path: Path, text: str, config_id: str = "node1", **files: str):
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    main = tmp_path / "main.conf"
    main.write_text(text)
    diags = Diagnostics()
    src = Source(diags, config_id)
    out = [(toks, Path(pos.file).name, pos.line) for toks, pos in src.read(str(main))]
    return out, diags


def test_comments_outside_quotes_only():
    assert strip_comment("router_id abc # note") == "router_id abc "
    assert strip_comment("a ! b") == "a "
    assert strip_comment("from root@x.com# mail") == "from root@x.com"
    assert strip_comment('script "/bin/x #1 !2" # c') == 'script "/bin/x #1 !2" '
    assert strip_comment("no comment") == "no comment"


def test_tokenize_quotes_and_braces():
    assert tokenize("virtual_ipaddress {10.0.0.1}") == ["virtual_ipaddress", "{", "10.0.0.1", "}"]
    toks = tokenize('script "/bin/check arg"  x')
    assert toks == ["script", "/bin/check arg", "x"]
    assert isinstance(toks[1], Quoted) and not isinstance(toks[2], Quoted)
    quoted_brace = tokenize('name "{"')
    assert quoted_brace == ["name", "{"] and type(quoted_brace[1]) is Quoted
    assert tokenize('a ""') == ["a", ""]


def test_brace_patterns():
    assert expand_braces("/x/{a,b}.conf") == ["/x/a.conf", "/x/b.conf"]
    assert expand_braces("{1,2}{x,y}") == ["1x", "1y", "2x", "2y"]
    assert expand_braces("/x/{single}.conf") == ["/x/{single}.conf"]


def test_include_glob_relative_and_positions(tmp_path):
    out, diags = lines(
        tmp_path,
        "a 1\ninclude conf.d/*.conf\ninclude {x,y}.inc\nz 9\n",
        **{"conf.d/b.conf": "\n\nb 2\n", "conf.d/c.conf": "c 3\n", "x.inc": "x 4\n",
           "y.inc": "include conf.d/c.conf\n"},
    )
    assert not diags
    assert out == [
        (["a", "1"], "main.conf", 1),
        (["b", "2"], "b.conf", 3),
        (["c", "3"], "c.conf", 1),
        (["x", "4"], "x.inc", 1),
        (["c", "3"], "c.conf", 1),
        (["z", "9"], "main.conf", 4),
    ]


def test_include_cycle_is_an_error(tmp_path):
    out, diags = lines(tmp_path, "include a.inc\n", **{"a.inc": "a 1\ninclude b.inc\n",
                                                        "b.inc": "include a.inc\nb 2\n"})
    assert [t for t, *_ in out] == [["a", "1"], ["b", "2"]]
    (err,) = diags.errors
    assert "include cycle" in err.message and err.pos.line == 1
    assert err.pos.file.endswith("b.inc")


def test_self_include_cycle(tmp_path):
    _, diags = lines(tmp_path, "include main.conf\n")
    assert len(diags.errors) == 1 and "cycle" in diags.errors[0].message


def test_missing_include_warns_unless_strict(tmp_path):
    _, diags = lines(tmp_path, "a 1\ninclude nothere.conf\n")
    (w,) = diags.warnings
    assert not diags.errors and w.pos.line == 2 and "nothere.conf" in w.message
    _, diags = lines(tmp_path, "includet nothere.conf\n")
    assert len(diags.errors) == 1
    diags = Diagnostics()
    (tmp_path / "m2.conf").write_text("include nothere.conf\n")
    list(Source(diags, "x", all_config=True).read(str(tmp_path / "m2.conf")))
    assert len(diags.errors) == 1


def test_conditionals(tmp_path):
    text = "@node1 a 1\n@node2 b 2\n@^node1 c 3\n@^node2 d 4\ne 5\n"
    out, _ = lines(tmp_path, text, config_id="node1")
    assert [t[0] for t, *_ in out] == ["a", "d", "e"]
    out, _ = lines(tmp_path, text, config_id="node2")
    assert [t[0] for t, *_ in out] == ["b", "c", "e"]


def test_definitions(tmp_path):
    text = (
        "$VIP=10.0.0.1\n"
        "$PRIO = 150\n"
        "vip $VIP\n"
        "prio ${PRIO}0\n"
        "untouched $UNDEFINED\n"
        "$BLOCK=real_server 1.1.1.1 80 { \\\n"
        "   weight 2 \\\n"
        "}\n"
        "$BLOCK\n"
    )
    out, diags = lines(tmp_path, text)
    assert not diags
    assert out == [
        (["vip", "10.0.0.1"], "main.conf", 3),
        (["prio", "1500"], "main.conf", 4),
        (["untouched", "$UNDEFINED"], "main.conf", 5),
        (["real_server", "1.1.1.1", "80", "{"], "main.conf", 9),
        (["weight", "2"], "main.conf", 9),
        (["}"], "main.conf", 9),
    ]


def test_recursive_definition_is_an_error_not_a_hang(tmp_path):
    _, diags = lines(tmp_path, "$A=$A x\nuse $A\n")
    assert len(diags.errors) == 1 and "nested too deeply" in diags.errors[0].message


def test_seq_and_lst(tmp_path):
    text = (
        "~SEQ(i, 3) a $i\n"
        "~SEQ(i, 5, 7) b $i\n"
        "~SEQ(i, 10, -5, 0) c $i\n"
        "~LST(n, x, y) d $n\n"
        "~SEQ(i, 1, 2) ~LST(j, p, q) e $i$j\n"
        "after $i\n"
    )
    out, diags = lines(tmp_path, text)
    assert not diags
    got = [" ".join(t) for t, *_ in out]
    assert got == [
        "a 1", "a 2", "a 3", "b 5", "b 6", "b 7", "c 10", "c 5", "c 0", "d x", "d y",
        "e 1p", "e 1q", "e 2p", "e 2q", "after $i",
    ]
    assert {line for _, _, line in out[:3]} == {1}


def test_seq_errors_skip_the_line(tmp_path):
    """keepalived reports an invalid ~SEQ/~LST and skips the line."""
    out, diags = lines(tmp_path, "~SEQ(i, 1, 0, 5) x\n~SEQ(i, a) y\n~SEQ(1x, 3) z\n"
                                 "~LST({a, b}, {1, 2, 3}) w\nkept\n")
    assert not diags.errors
    assert [d.pos.line for d in diags.warnings] == [1, 2, 3, 4]
    assert all("line skipped" in d.message for d in diags.warnings)
    assert [" ".join(t) for t, *_ in out] == ["kept"]


def test_seq_and_lst_forms_of_keepalived(tmp_path):
    """~SEQx prints hex, numbers may be 0x.. or $definitions, one number counts from 1,
    ~LST takes {a, b} variable lists with {x, y} value sets (missing values blank)."""
    text = (
        "$N=2\n"
        "~SEQx(i, 9, 0xb) a $i\n"
        "~SEQ(i, $N) b $i\n"
        "~SEQ(i, 0) c $i\n"
        "~LST({h, p}, {10.0.0.1, 80}, {10.0.0.2}) real_server $h ${p}x\n"
    )
    out, diags = lines(tmp_path, text)
    assert not diags, [str(d) for d in diags.items]
    assert [" ".join(t) for t, *_ in out] == [
        "a 9", "a a", "a b", "b 1", "b 2", "c 1", "c 0",
        "real_server 10.0.0.1 80x", "real_server 10.0.0.2 x"]


def test_crlf_and_invalid_utf8(tmp_path):
    p = tmp_path / "k.conf"
    p.write_bytes(b"global_defs {\r\n  router_id caf\xe9\r\n}\r\n")
    from conf import load

    loaded = load(str(p), check_host=False)
    assert loaded.ok, messages(loaded)
    assert loaded.config.global_defs.router_id == "caf\udce9"


def test_positions_survive_into_the_model(tmp_path):
    (tmp_path / "inst.inc").write_text(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 300\n}\n")
    loaded = load_text(tmp_path, "! header\ninclude inst.inc\n")
    (warn,) = [d for d in loaded.diags.items if "300" in d.message]
    assert warn.pos.file.endswith("inst.inc") and warn.pos.line == 3
    (err,) = loaded.diags.errors  # the VRID left unset: keepalived refuses the instance
    assert err.pos.file.endswith("inst.inc") and err.pos.line == 1
