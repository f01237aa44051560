"""The collector schedule: each step frees new cyclic garbage and freezes the survivors; the
whole-heap pass frees cycles that died after they were frozen."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from app.services.heap import CollectorSchedule


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


class Leaf:
    """No cycle: freed by reference counting, frozen or not."""


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    """The schedule freezes this whole test process: give every object back afterwards."""
    yield
    gc.unfreeze()


def test_a_step_frees_new_garbage_and_freezes_what_lives() -> None:
    now = [0.0]
    schedule = CollectorSchedule(1.0, 3600.0, clock=lambda: now[0])
    dead = Node()
    dead_ref = weakref.ref(dead)
    del dead
    alive = Node()
    schedule.step()
    assert dead_ref() is None  # collected before the freeze, not frozen
    assert gc.get_freeze_count() > 0
    assert alive.me is alive and schedule.steps == 1 and schedule.whole_heap_passes == 0


def test_acyclic_frozen_objects_are_freed_as_usual() -> None:
    schedule = CollectorSchedule(1.0, 3600.0, clock=lambda: 0.0)
    leaf = Leaf()
    ref = weakref.ref(leaf)
    cache = {"C1": leaf}
    del leaf
    schedule.step()  # the cache and the leaf are frozen now
    cache.clear()  # the last reference goes: reference counting frees it at once
    assert ref() is None


def test_a_cycle_that_dies_frozen_waits_for_the_whole_heap_pass() -> None:
    now = [0.0]
    schedule = CollectorSchedule(1.0, 60.0, clock=lambda: now[0])
    node = Node()
    ref = weakref.ref(node)
    schedule.step()  # frozen while alive
    del node
    now[0] = 30.0
    schedule.step()  # an ordinary step does not look at frozen objects
    assert ref() is not None
    now[0] = 61.0
    schedule.step()  # the whole-heap pass
    assert ref() is None and schedule.whole_heap_passes == 1
    now[0] = 100.0
    schedule.step()
    assert schedule.whole_heap_passes == 1  # next one due at 121


def test_run_steps_on_the_event_loop_until_cancelled() -> None:
    schedule = CollectorSchedule(0.01, 3600.0)

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(schedule.run())
        while schedule.steps < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert schedule.steps >= 3
