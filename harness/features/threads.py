"""How many threads a feature extraction runs, so that it does not collapse on a shared machine.

PyTorch starts one intra-op thread per core. Beside another busy process those threads outnumber the free
cores, and every parallel region ends in a barrier that waits for the slowest thread, which is the one the
scheduler has just descheduled: an extraction measured at under 0.3 s per utterance alone took 112 s per
utterance beside other work (issue 26). Asking for only the cores that are free (the CPUs this process may
run on, less the load the others put on them, at least one) keeps it near its quiet speed.
``HARNESS_EXTRACT_THREADS`` fixes the number.

The load is sampled now (the machine's busy share over ``SAMPLE_S``), not read from the 1-minute load
average: that average lags a minute, so an extraction started right after a search's trials ended was
given one thread on an idle 2-core machine (the demo's wav2vec2 features took 70 s so).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)
THREADS_VARIABLE = "HARNESS_EXTRACT_THREADS"
SAMPLE_S = 0.3


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask: a container's or Ray's share, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def busy_cores(sample_s: float = SAMPLE_S) -> float:
    """Cores the machine's other work keeps busy now: its busy share over ``sample_s`` (this process sleeps
    meanwhile) times its cores."""
    import psutil

    return psutil.cpu_percent(interval=sample_s) / 100 * (psutil.cpu_count() or 1)


def extraction_threads(load: float | None = None) -> int:
    """Threads for an extraction starting now: ``HARNESS_EXTRACT_THREADS``, else the usable CPUs not busy
    with other work (``load``: busy cores, sampled now by default), at least 1."""
    fixed = os.environ.get(THREADS_VARIABLE, "").strip()
    if fixed:
        return max(1, int(fixed))
    cpus = usable_cpus()
    busy = busy_cores() if load is None else load
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
