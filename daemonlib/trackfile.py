"""track_file arithmetic, shared by VRRP's track_file and the FILE_CHECK checker."""

from __future__ import annotations


def file_contribution(value: int, weight: int, reverse: bool) -> tuple[int, bool]:
    """track_file: value x weight; weight 0: any non-zero value is a fault; a delta of
    -254 or less is a fault too."""
    if weight == 0:
        return 0, value != 0
    delta = value * (-weight if reverse else weight)
    return delta, delta <= -254


def read_file_value(path: str | None) -> int:
    """A tracked file's number (its first word); missing or unreadable reads as 0,
    as keepalived does."""
    try:
        with open(path or "") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
