"""Large long-lived state and Python's cyclic garbage collector.

A full collection visits every object the collector tracks. The online updater built from the data holds millions
of small lists and dicts for as long as its process runs: built with the collector on, the collections it triggers
rescan what is already built, and every later full collection rescans all of it (`traffic run --days 2 --in-process`:
the updater took 3.5 s to build instead of 0.8 s, and scoring ran at half speed). `long_lived_state` pauses the
collector while such state is built, then freezes what exists (`gc.freeze`: a generation the collector never visits;
reference counting still frees whatever is dropped later).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def serving_collector(threshold: int) -> None:
    """After a serving process's start: what it loaded (libraries, models) leaves the collector, so full collections
    stay short, and the youngest generation is collected every `threshold` allocations (`serve.gc_threshold`):
    most objects of a request die young, uncollected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, 10, 10)


@contextmanager
def long_lived_state() -> Iterator[None]:
    """Build inside it what the process keeps: no collection meanwhile, and none will visit it afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.freeze()
