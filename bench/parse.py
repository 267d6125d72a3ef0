"""`director -t` against `keepalived -t` on a generated 1000 x 10 config (~112k lines),
whole-process wall time, same file, same run, interleaved."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DIRECTOR, HEADER, compare, precompile, row, run_timed  # noqa: E402
from gen_config import generate, size_args  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=7)
    size_args(p)
    a = p.parse_args()
    keepalived = shutil.which("keepalived")
    if not keepalived:
        print("bench/parse.py: keepalived is not installed (make install)", file=sys.stderr)
        return 1
    precompile()
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "keepalived.conf")
        text = generate(a.vs, a.rs)
        with open(conf, "w") as f:
            f.write(text)
        _, _, rc = run_timed([DIRECTOR, "-t", "-f", conf])
        if rc != 0:
            print(f"bench/parse.py: director -t rejected the generated config (rc {rc})",
                  file=sys.stderr)
            return 1
        res = compare({"director": [DIRECTOR, "-t", "-f", conf],
                       "keepalived": [keepalived, "-t", "-f", conf]}, a.runs)
    lines = text.count("\n")
    print(f"config: {a.vs} virtual servers x {a.rs} real servers, {lines} lines; "
          f"median of {a.runs} interleaved runs")
    print(HEADER)
    print(row("parse: `-t` wall time", res["director"]["median"], res["keepalived"]["median"],
              "s", 2.0))
    print(row("parse: `-t` peak RSS", res["director"]["rss_kib"] / 1024,
              res["keepalived"]["rss_kib"] / 1024, "MiB", None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
