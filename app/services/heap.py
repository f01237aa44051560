"""Short full collections while the per-customer caches churn.

The serving process keeps state per customer (cached profiles, policy-gate verdicts, head
removals, folded-in scores): several objects the garbage collector tracks for each of up to
``FINREC_PROFILE_CACHE_SIZE`` customers. CPython's automatic full collection scans every tracked
object that start-up did not freeze, and it runs whenever enough new objects have survived into
the oldest generation — which is what cache misses produce. With 100,000 profiles cached and
most requests missing, full collections came several times a minute and paused serving for
90 ms to over half a second each.

:class:`CollectorSchedule` instead runs, every ``step_seconds``, a full collection followed by
``gc.freeze()``: the collection frees the cyclic garbage among the objects made since the last
step, the freeze moves the survivors out of reach of later scans, so each step only looks at one
step's worth of new objects (milliseconds). Frozen objects are still freed as usual when their
last reference goes; only a *cycle* that becomes garbage after its objects were frozen waits —
for the long step every ``full_seconds``, which unfreezes everything before collecting (one full
pause per period, by default an hour).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class CollectorSchedule:
    """Collect-and-freeze every ``step_seconds``; a whole-heap collection every
    ``full_seconds`` (see the module docstring)."""

    def __init__(
        self,
        step_seconds: float,
        full_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.step_seconds = step_seconds
        self.full_seconds = full_seconds
        self._clock = clock
        self._next_full = clock() + full_seconds
        self.steps = 0
        self.whole_heap_passes = 0

    def step(self) -> None:
        """One step: collect what is not frozen (everything, when the whole-heap pass is due),
        then freeze what survived."""
        now = self._clock()
        if now >= self._next_full:
            self._next_full = now + self.full_seconds
            gc.unfreeze()  # frozen objects back into the oldest generation: all are examined
            self.whole_heap_passes += 1
        gc.collect()
        gc.freeze()
        self.steps += 1

    async def run(self) -> None:
        """Step forever on the running event loop (cancel to stop)."""
        while True:
            await asyncio.sleep(self.step_seconds)
            try:
                self.step()
            except Exception:  # never expected; serving must not depend on it
                log.exception("scheduled garbage collection failed")
