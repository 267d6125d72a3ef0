"""The program ExaBGP runs for its process API (standard library only, run as a
script): it joins ExaBGP's pipes to the speaker's unix socket. Commands from the
speaker go to stdout (ExaBGP reads them), ExaBGP's answers on stdin go to the speaker.
Either side closing ends it, and ExaBGP (api.terminate) ends with it."""

import os
import selectors
import socket
import sys
import time


def main(path: str) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + 10
    while True:
        try:
            sock.connect(path)
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.stderr.write(f"director bridge: cannot connect to {path}\n")
                return 1
            time.sleep(0.05)
    sel = selectors.DefaultSelector()
    stdin = sys.stdin.fileno()
    sel.register(stdin, selectors.EVENT_READ, sock.fileno())
    sel.register(sock, selectors.EVENT_READ, sys.stdout.fileno())
    while True:
        for key, _ in sel.select():
            src = key.fd
            data = os.read(src, 65536)
            if not data:
                return 0
            dst = key.data
            while data:
                data = data[os.write(dst, data):]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
