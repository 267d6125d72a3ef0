"""`director genhash` (keepalived's `genhash`, `keepalived -T`): fetch a URL from a real
server with the checkers' own client and print the MD5 digest of its body, to paste into
a `digest` line."""

from __future__ import annotations

import argparse
import asyncio
import sys

from conf.model import Checker, Url


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="director genhash",
                                description="MD5 digest of a web page, for HTTP_GET/SSL_GET")
    p.add_argument("-s", "--server", required=True, help="server address")
    p.add_argument("-p", "--port", type=int, help="port (default 80, 443 with -S)")
    p.add_argument("-u", "--url", default="/", help="URL path (default /)")
    p.add_argument("-S", "--use-ssl", action="store_true", help="use TLS")
    p.add_argument("-I", "--use-sni", action="store_true", help="send SNI (the -V name)")
    p.add_argument("-V", "--use-virtualhost", metavar="HOST", help="Host header")
    p.add_argument("-P", "--protocol", type=lambda v: "1.0C" if v == "1.0c" else v,
                   choices=("1.0", "1.0C", "1.1"), default="1.0",
                   help="http_protocol of the request: 1.0, 1.0c (with Connection: close) "
                   "or 1.1 (default 1.0)")
    p.add_argument("-m", "--fwmark", type=int, help="firewall mark of the connection")
    p.add_argument("-t", "--timeout", type=float, default=5.0, help="seconds (default 5)")
    p.add_argument("-v", "--verbose", action="store_true", help="print status and length")
    return p


def main(argv: list[str]) -> int:
    args = make_parser().parse_args(argv)
    from . import http

    ck = Checker(type="SSL_GET" if args.use_ssl else "HTTP_GET", connect_ip=args.server,
                 connect_port=args.port or (443 if args.use_ssl else 80),
                 virtualhost=args.use_virtualhost, enable_sni=args.use_sni,
                 http_protocol=args.protocol, fwmark=args.fwmark, urls=(Url(path=args.url),))
    get = asyncio.run(http.fetch(ck, ck.urls[0], args.timeout))
    if get.error is not None:
        print(f"genhash: cannot fetch {args.url} from {args.server}: {get.error}",
              file=sys.stderr)
        return 1
    assert get.md5 is not None
    if args.verbose:
        print(f"HTTP status: {get.status}\nbody: {get.received} bytes")
    print(f"MD5SUM = {get.md5.hexdigest()}")
    return 0
