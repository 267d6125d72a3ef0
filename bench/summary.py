"""Put a verdict on top of the benchmark report: how many rows passed their target,
which failed, how many are reported without a target.

    python bench/summary.py bench/RESULTS.md   (rewrites the file in place)
"""

from __future__ import annotations

import sys


def verdicts(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"pass": [], "FAIL": [], "report": []}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and cells[-1] in out:
            out[cells[-1]].append(" ".join(cells[:2]))
    return out


def main() -> int:
    path = sys.argv[1]
    with open(path) as f:
        text = f.read()
    v = verdicts(text)
    head, _, rest = text.partition("\n")
    lines = [head, "", f"**{len(v['pass'])} rows met their target, {len(v['FAIL'])} missed, "
                       f"{len(v['report'])} reported without a target.**"]
    lines += [f"- missed: {name}" for name in v["FAIL"]]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + rest)
    print("\n".join(lines[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
