"""How the daemons keep their memory small: no transparent huge pages, and malloc's free
pages handed back after the big allocations of a parse or a start-up."""

from __future__ import annotations

import gc

from .libc import PR_SET_THP_DISABLE, libc


def no_huge_pages() -> None:
    """Transparent huge pages off for this process and all it forks or executes (the
    kernel keeps the flag across both). Python's heap is small objects scattered over
    many pages: with THP `always` (Debian's kernels) each 2 MiB region touched once is
    resident in full, and a forked child's copy-on-write keeps both copies whole (the
    1000 x 10 config: +10 MiB PSS in the VM). Nothing is lost: no hot loop here walks
    memory the TLB would notice. A kernel without the prctl refuses it: nothing to do."""
    libc().prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)


def trim(collect: bool = True) -> None:
    """Collect (unless not `collect`), then give malloc's free pages back to the kernel
    (glibc keeps what a parse or a start-up freed in its heap; a child forked now would
    carry it too)."""
    if collect:
        gc.collect()
    try:
        libc().malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
