"""Batch precompute: every customer's list, scored in chunks, resumable, published atomically."""

from app.jobs.precompute.runner import (
    ChunkDone,
    PrecomputeError,
    PrecomputeOptions,
    PrecomputeResult,
    Shard,
    run_precompute,
)

__all__ = [
    "ChunkDone",
    "PrecomputeError",
    "PrecomputeOptions",
    "PrecomputeResult",
    "Shard",
    "run_precompute",
]
