"""How many threads a feature extraction runs, so that it does not collapse on a shared machine.

PyTorch starts one intra-op thread per core. Beside another busy process those threads outnumber the free
cores, and every parallel region ends in a barrier that waits for the slowest thread, which is the one the
scheduler has just descheduled: an extraction measured at under 0.3 s per utterance alone took 112 s per
utterance beside other work (issue 26). Asking for only the cores that are free (the CPUs this process may
run on, less the load the others put on them, at least one) keeps it near its quiet speed.
``HARNESS_EXTRACT_THREADS`` fixes the number.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)
THREADS_VARIABLE = "HARNESS_EXTRACT_THREADS"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask: a container's or Ray's share, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def extraction_threads(load: float | None = None) -> int:
    """Threads for an extraction starting now: ``HARNESS_EXTRACT_THREADS``, else the usable CPUs not busy
    with other work (``load``: the 1-minute load average by default), at least 1."""
    fixed = os.environ.get(THREADS_VARIABLE, "").strip()
    if fixed:
        return max(1, int(fixed))
    cpus = usable_cpus()
    busy = os.getloadavg()[0] if load is None and hasattr(os, "getloadavg") else (load or 0.0)
    return max(1, min(cpus, int(cpus - busy + 0.5)))


@contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run the block with ``n`` intra-op threads, then restore the previous number."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    log.debug("extraction on %d thread(s) (was %d)", n, before)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
