"""Histogram points recorded off the request path.

Recording one point with the Python SDK costs some 5 µs of calls (a measurement object,
the exemplar filter, every reader's storage, a lock): the largest part of what an
LRU-hit read paid for its metric. An App with its own SDK queues `(histogram, value,
attributes)` instead (a deque append) and hands the points to the SDK in batches: on
the span export thread after each export, and before every metric collection (an
observable instrument's callback, which the SDK runs before it reads the histograms),
so an export never misses a point recorded before it.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

YIELD_EVERY = 32  # points recorded between two releases of the GIL


class DeferredPoints:
    """A queue of histogram points; `drain()` records them (any thread, any number at once)."""

    def __init__(self, meter: Meter) -> None:
        self._queue: collections.deque[tuple[Histogram, float, Mapping[str, Any] | None]] = collections.deque()
        # Reports nothing: its callback is the hook that runs before each collection.
        meter.create_observable_gauge("ifriend.telemetry.deferred_points", callbacks=[self._before_collection])

    def record(self, histogram: Histogram, value: float, attributes: Mapping[str, Any] | None) -> None:
        self._queue.append((histogram, value, attributes))

    def drain(self) -> int:
        """Record every queued point; how many were recorded."""
        popleft = self._queue.popleft
        done = 0
        while True:
            try:
                histogram, value, attributes = popleft()
            except IndexError:
                return done
            histogram.record(value, attributes)
            done += 1
            if done % YIELD_EVERY == 0:
                time.sleep(0)  # let the event loop's thread take the GIL between chunks

    def __len__(self) -> int:
        return len(self._queue)

    def _before_collection(self, options: CallbackOptions) -> Iterable[Observation]:
        self.drain()
        return ()
