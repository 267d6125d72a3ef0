"""lvs_notify_fifo_script: the checker child starts the script with the FIFO's name as
its last argument (as keepalived), the script reads the events, and it is stopped (and
the FIFO it made removed) when the child stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from testlib import ROOT


def wait_for(cond, timeout: float, what: str):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not (value := cond()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return value


def test_lvs_notify_fifo_script_reads_the_events(tmp_path):
    with socket.socket() as s:  # a port nothing listens on: the checker fails at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fifo, out = tmp_path / "lvs.fifo", tmp_path / "events"
    script = tmp_path / "reader.sh"
    script.write_text(f'#!/bin/sh\nwhile read line; do echo "$line" >> {out}; done < "$1"\n')
    script.chmod(0o755)
    conf = tmp_path / "k.conf"
    conf.write_text(f"""
global_defs {{
    lvs_notify_fifo {fifo}
    lvs_notify_fifo_script {script}
}}
virtual_server 10.0.0.1 80 {{
    protocol TCP
    delay_loop 0.2
    real_server 127.0.0.1 {port} {{
        TCP_CHECK {{
            connect_timeout 0.5
            retry 0
            warmup 0
        }}
    }}
}}
""")
    proc = subprocess.Popen([sys.executable, "-m", "director", "-C", "-n", "--dry-run", "-f",
                             str(conf)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: out.exists() and "DOWN" in out.read_text(), 30,
                 "the script to write the real server's DOWN line")
        assert os.path.exists(fifo)
        assert f"RS [127.0.0.1]:tcp:{port} [10.0.0.1]:tcp:80 DOWN" in out.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert not fifo.exists()  # made by us, removed at stop
