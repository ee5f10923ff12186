"""The garbage collector of a long-running bot process, tuned for short pauses.

A bot holds many long-lived objects: modules, the agent, and the sessions' parsed
events in the LRU. CPython's defaults collect the young generation every 700 new
container objects, and every 100th of those collections scans the old ones too.
Whatever survived start-up is frozen (`gc.freeze`: never scanned again), and the
young threshold is raised so that requests, which make little cyclic garbage,
trigger fewer collections. The tuning's effect on a tiered append's p50 and p99 is
a figure of `ifriend bench sessions` ("append n=... [gc]").
"""

from __future__ import annotations

import gc

# (young, middle, old): collections of a generation per collection of the one below.
THRESHOLDS = (50_000, 20, 100)


def tune_gc(*, freeze: bool = True, collect: bool = True) -> None:
    """Raise the collector's thresholds and, if `freeze`, freeze every object alive now
    (after a full collection, unless `collect` is False: garbage frozen is never freed).

    Call once the process has started (`ifriend run` does, after the App connected).
    """
    if freeze:
        if collect:
            gc.collect()
        gc.freeze()
    gc.set_threshold(*THRESHOLDS)
