"""Keep freed tensor memory in the process instead of handing it back to the kernel after every step.

glibc serves allocations above its mmap threshold (at most 32 MiB, adjusted as blocks come and go) with
fresh ``mmap`` pages and unmaps them on ``free``. A detector's activations and gradients are tens of MiB
each, allocated and freed on every forward and backward pass, so on the CPU each pass faults its memory in
again from zeroed pages: on 2 cores a 20-step training job spent 38 of its 109 CPU seconds in the kernel
(15 million minor page faults), and pool inference ran at 11 images/s instead of 18
(``docs/benchmarks.md``, "Freed memory kept by the jobs"). Raising the mmap threshold and the trim
threshold lets freed blocks be reused: the process keeps its peak, which a job's peak memory bounds anyway.

Process-wide and idempotent; called by the training script and by every ``Predictor`` (pool inference).
A C library without ``mallopt`` (macOS, musl) leaves the allocator as it is.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEPT_BYTES = 1 << 30
"""Blocks up to 1 GiB come from the heap, and up to 1 GiB of free heap is kept (``mallopt`` takes an int)."""


def keep_freed_memory() -> bool:
    """Tell glibc to serve large blocks from the heap and keep freed ones; False where it cannot be told."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the C library the interpreter runs on
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, KEPT_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEPT_BYTES))
