"""The cyclic garbage collector, for a heap that is mostly long-lived projections.

Python's collector rescans every tracked object on each full (generation 2) collection. The operator's
heap is the imported modules plus one projection and one evaluation per workload, which live as long as
the workload does; Kopf adds a steady stream of short-lived objects per watch event. While the heap grows
(start-up on a big cluster) the collector ran a full scan each time it grew by a quarter: 4.4 s of the
operator's 24.6 s of CPU until 10,000 Deployments were audited (measured with gc.callbacks).

So survivors are frozen (`gc.freeze()`: moved to a generation the collector never scans) in batches:
after start-up's imports, then after every `freeze_every` audits, each time right after a collection of
what is not frozen yet, so no cyclic garbage is frozen with them. Frozen objects are still freed by
reference counting; only a cycle that becomes garbage after its freeze would wait, so a full collection
of everything (`unfreeze`, `collect`, `freeze`) runs at most every `full_interval` seconds, when an audit
asks for a freeze.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
YOUNG_THRESHOLD = 10_000
"""Allocations between two collections of the youngest generation (Python's default: 700). Each Kopf
event allocates hundreds of objects that live for a few awaits; at 700 they were scanned (and promoted)
while still alive."""


class HeapKeeper:
    def __init__(self, freeze_every: int, full_interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.freeze_every = freeze_every
        """Audits between two freezes; 0 leaves the collector as Python configures it."""
        self.full_interval = full_interval
        self.clock = clock
        self.pending = 0
        self.last_full = clock()
        self.freezes = 0

    @property
    def enabled(self) -> bool:
        return self.freeze_every > 0

    def start(self) -> None:
        """Freeze what start-up built (modules, compiled policies): it lives as long as the process."""
        if self.enabled:
            _young, older, oldest = gc.get_threshold()
            gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
            gc.collect()
            gc.freeze()
            self.last_full = self.clock()

    def audited(self) -> None:
        """Count an audit; every `freeze_every` of them, freeze their survivors."""
        if not self.enabled:
            return
        self.pending += 1
        if self.pending >= self.freeze_every:
            self.freeze()

    def freeze(self) -> None:
        self.pending = 0
        self.freezes += 1
        if self.clock() - self.last_full >= self.full_interval:
            gc.unfreeze()  # everything is scanned once: cycles that died while frozen are freed
            self.last_full = self.clock()
        gc.collect()
        gc.freeze()
        log.debug("heap: %d objects frozen", gc.get_freeze_count())

    def stop(self) -> None:
        if self.enabled:
            gc.unfreeze()
