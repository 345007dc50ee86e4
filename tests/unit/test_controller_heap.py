"""The heap keeper: freezes survivors in batches and rescans everything now and then."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from readiness.controller.heap import YOUNG_THRESHOLD, HeapKeeper


@pytest.fixture(autouse=True)
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_start_freezes_what_start_up_built_and_raises_the_young_threshold() -> None:
    keeper = HeapKeeper(freeze_every=3, full_interval=600)
    keeper.start()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    keeper.stop()
    assert gc.get_freeze_count() == 0


def test_survivors_are_frozen_every_n_audits_and_cycles_are_collected_first() -> None:
    keeper = HeapKeeper(freeze_every=3, full_interval=600, clock=Clock())
    keeper.start()
    frozen = gc.get_freeze_count()
    survivors = [{"projection": [i]} for i in range(100)]  # tracked: they hold containers
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle  # garbage, but only the cyclic collector can free it
    keeper.audited()
    keeper.audited()
    assert keeper.freezes == 0
    keeper.audited()
    assert keeper.freezes == 1 and keeper.pending == 0
    assert gc.get_freeze_count() >= frozen + len(survivors)
    assert not any(isinstance(o, list) and len(o) == 1 and o[0] is o for o in gc.get_objects())


def test_a_full_rescan_unfreezes_at_most_every_interval() -> None:
    clock = Clock()
    keeper = HeapKeeper(freeze_every=1, full_interval=600, clock=clock)
    keeper.start()
    unfrozen: list[int] = []
    original = gc.unfreeze

    def spy() -> None:
        unfrozen.append(1)
        original()

    gc.unfreeze = spy
    try:
        keeper.audited()
        clock.now = 599
        keeper.audited()
        assert unfrozen == []
        clock.now = 600
        keeper.audited()
        assert unfrozen == [1]
        assert gc.get_freeze_count() > 0  # frozen again right after the full collection
    finally:
        gc.unfreeze = original


def test_zero_leaves_the_collector_alone() -> None:
    threshold = gc.get_threshold()
    keeper = HeapKeeper(freeze_every=0, full_interval=600)
    keeper.start()
    for _ in range(10):
        keeper.audited()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == threshold and keeper.freezes == 0
