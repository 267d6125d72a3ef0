"""The pure parts of the checkers: retry logic, FILE_CHECK arithmetic, DNS messages,
HTTP verdicts."""

from __future__ import annotations

import struct

import pytest

from checkers.http import body_problem, status_ok
from checkers.probes import PROBES, dns_answer_ok, dns_query, file_probe, probe
from checkers.state import RetryState
from conf.build import CHECKER_TYPES
from conf.model import Checker, Url


def test_down_only_after_every_retry_failed():
    s = RetryState(retry=2, delay_loop=6, delay_before_retry=3)
    steps = [s.result(False) for _ in range(3)]
    assert [(x.delay, x.changed, x.up) for x in steps] == [
        (3, False, True), (3, False, True), (6, True, False)]
    assert s.result(False) == steps[2].__class__(6, False, False)  # stays down, no news
    back = s.result(True)
    assert (back.changed, back.up, back.delay) == (True, True, 6)  # one success is enough


def test_a_success_between_failures_resets_the_count():
    s = RetryState(retry=1, delay_loop=1, delay_before_retry=0.5)
    assert not s.result(False).changed
    assert not s.result(True).changed
    assert not s.result(False).changed  # a fresh round: retry again
    assert s.result(False).changed


def test_retry_zero_fails_at_once():
    s = RetryState(retry=0, delay_loop=1, delay_before_retry=1)
    assert s.result(False).changed


def test_file_check(tmp_path):
    f = tmp_path / "weight"
    ck = Checker(type="FILE_CHECK")
    f.write_text("0\n")
    assert file_probe(ck, str(f), 0, False, 5).ok
    f.write_text("3\n")
    assert not file_probe(ck, str(f), 0, False, 5).ok  # weight 0: non-zero means down
    r = file_probe(ck, str(f), 2, False, 5)
    assert r.ok and r.weight == 11
    r = file_probe(ck, str(f), 2, True, 5)
    assert r.ok and r.weight == 0  # never negative
    f.write_text("-200\n")
    assert not file_probe(ck, str(f), 2, False, 5).ok  # -400: down
    assert file_probe(ck, str(tmp_path / "missing"), 2, False, 5).weight == 5  # reads as 0


def test_dns_messages():
    q = dns_query(0x1234, "example.test.", "A")
    assert q[:12] == struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    assert q[12:] == b"\x07example\x04test\x00" + struct.pack("!HH", 1, 1)
    answer = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0)
    assert dns_answer_ok(0x1234, answer) is None
    assert dns_answer_ok(0x9999, answer) == "not an answer to our query"
    assert dns_answer_ok(0x1234, struct.pack("!HHHHHH", 0x1234, 0x8183, 1, 0, 0, 0)) == "rcode 3"
    assert dns_answer_ok(0x1234, struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 0, 0, 0)) \
        == "no answer records"
    assert dns_answer_ok(0x1234, b"\x12") == "short DNS reply"


def test_http_verdicts():
    assert status_ok(Url(), 200) and status_ok(Url(), 299) and not status_ok(Url(), 301)
    url = Url(status_code=((200, 200), (500, 599)))
    assert status_ok(url, 503) and not status_ok(url, 404)
    import hashlib

    body = b"hello"
    assert body_problem(Url(digest=hashlib.md5(body).hexdigest()), body) is None
    assert "digest" in body_problem(Url(digest="0" * 32), body)
    assert body_problem(Url(regex="h.llo"), body) is None
    assert body_problem(Url(regex="bye"), body) == "regex did not match"
    assert body_problem(Url(regex="h.llo", regex_no_match=True), body) == "regex matched"


def test_every_checker_type_has_a_probe():
    """The registry covers what the parser accepts (FILE_CHECK is computed by the engine)."""
    assert set(PROBES) | {"FILE_CHECK"} == set(CHECKER_TYPES)
    with pytest.raises(ValueError, match="NO_SUCH_CHECK"):
        probe(Checker(type="NO_SUCH_CHECK"), 1.0)
