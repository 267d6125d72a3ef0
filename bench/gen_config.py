"""Generate a big keepalived.conf: N virtual servers x M real servers, checkers
alternating TCP_CHECK and HTTP_GET. Addresses are from
TEST-NET ranges and are never contacted (the config is only parsed)."""

from __future__ import annotations

import argparse
import sys


def generate(n_vs: int = 1000, n_rs: int = 10, checks: bool = True) -> str:
    out = [
        "global_defs {", "    router_id BENCH", "}",
    ]
    for v in range(n_vs):
        vip = f"198.51.{100 + v // 250}.{v % 250 + 1}"
        out += [
            f"virtual_server {vip} {8000 + v % 1000} {{",
            "    delay_loop 6",
            "    lb_algo wrr",
            "    lb_kind NAT",
            "    persistence_timeout 50",
            "    protocol TCP",
        ]
        for r in range(n_rs):
            rip = f"203.0.{v % 250}.{r + 1}"
            out += [f"    real_server {rip} 80 {{", "        weight 1"]
            if not checks:
                pass
            elif (v * n_rs + r) % 2 == 0:
                out += [
                    "        TCP_CHECK {", "            connect_timeout 3",
                    "            retry 3", "            delay_before_retry 3",
                    "            connect_port 80", "        }",
                ]
            else:
                out += [
                    "        HTTP_GET {", "            url {", "                path /health",
                    "                status_code 200", "            }",
                    "            connect_timeout 3", "            retry 3",
                    "            delay_before_retry 3", "        }",
                ]
            out.append("    }")
        out.append("}")
    return "\n".join(out) + "\n"


def size_args(p: argparse.ArgumentParser) -> None:
    """--vs / --rs: the generated config's size, the same defaults for every benchmark."""
    p.add_argument("--vs", type=int, default=1000)
    p.add_argument("--rs", type=int, default=10)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    size_args(p)
    a = p.parse_args()
    sys.stdout.write(generate(a.vs, a.rs))
