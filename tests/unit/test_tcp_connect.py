"""TCP_CHECK's connect on loopback: a verdict within the call when the server answered
there (listening, or refusing), a socket to wait on while the handshake is pending."""

from __future__ import annotations

import socket

from checkers.probes import UP, tcp_open
from conf.model import Checker


def checker(port: int) -> Checker:
    return Checker(type="TCP_CHECK", connect_ip="127.0.0.1", connect_port=port)


def test_verdict_within_the_call_from_a_listening_server():
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(8)
        assert tcp_open(checker(lsn.getsockname()[1])) == (None, UP)


def test_refusal_within_the_call():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: the port refuses
        s_port = s.getsockname()[1]
        sock, outcome = tcp_open(checker(s_port))
    assert sock is None and outcome is not None
    assert (outcome.ok, outcome.reason) == (False, "Connection refused")


def test_a_pending_handshake_is_left_to_wait_on():
    # a full accept queue makes the kernel drop further SYNs: the connect stays pending
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(0)
        opened = []
        try:
            for _ in range(8):
                sock, outcome = tcp_open(checker(lsn.getsockname()[1]))
                if sock is not None:
                    opened.append(sock)
                    break
                assert outcome == UP  # accepted into the queue before it filled
            assert opened, "every connect completed although the accept queue was full"
            assert opened[0].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        finally:
            for s in opened:
                s.close()
