"""The garbage collector figure: a tiered append's p50 and p99 in a process holding a full LRU.

A bot's heap is mostly parsed events: a full `[backends.tiered]` LRU (256 MB by default)
holds about 100,000 of them. CPython's collector scans every one of them in each full
collection, and the append that triggers it waits. Each worker process holds `held`
parsed events (as the LRU would), sets its collector up one way, appends `appends`
events to a tiered session one by one, and prints every append's duration and the
longest collection it saw. The settings, alternated process by process:

- "gc default": CPython's own thresholds, nothing frozen;
- "gc tuned": what `ifriend run` does (`tune_gc` once the App is connected, before
  the events are held);
- "gc off": no collection at all (the lower bound of the tail).

    python -m ifriend_bench.collector '<settings as JSON>' MODE HELD APPENDS
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import uuid
from typing import Any

from .timing import Report

MODES = ("gc default", "gc tuned", "gc off")
FIGURE = "append n=100, {held} parsed events held [gc]"


async def _worker(settings: dict[str, Any], mode: str, held: int, appends: int) -> None:
    from ifriend.plugin_api import App, Settings, decode_events, tune_gc

    from .sessions import APP, USER, make_event

    pauses: list[float] = []
    started = [0.0]

    def clock(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    async with App(Settings.model_validate(settings)) as app:
        if mode == "gc tuned":
            tune_gc()
        elif mode == "gc off":
            gc.disable()
        service = app.session_service
        payloads = [make_event(i).model_dump_json(exclude_none=True, by_alias=True).encode() for i in range(100)]
        lru = [decode_events(payloads) for _ in range(held // len(payloads))]  # what a full LRU holds
        session = await service.create_session(app_name=APP, user_id=USER, session_id=f"gc-{uuid.uuid4().hex[:8]}")
        for i in range(100):
            await service.append_event(session, make_event(i))
        gc.callbacks.append(clock)
        seconds = []
        for i in range(appends):
            event = make_event(1000 + i)
            start = time.perf_counter()
            await service.append_event(session, event)
            seconds.append(time.perf_counter() - start)
        gc.callbacks.remove(clock)
        print(json.dumps({"seconds": seconds, "longest_collection": max(pauses, default=0.0),
                          "collections": len(pauses), "held": sum(len(s) for s in lru)}), flush=True)


async def _run_worker(settings: dict[str, Any], mode: str, held: int, appends: int) -> dict[str, Any]:
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ifriend_bench.collector", json.dumps(settings), mode, str(held), str(appends),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(worker.communicate(), timeout=600)
    if worker.returncode != 0:
        raise RuntimeError(f"the {mode!r} worker failed (exit status {worker.returncode})")
    return json.loads(out.decode().strip().splitlines()[-1])


async def bench_collector(
    report: Report, settings: dict[str, Any], *, held: int, appends: int, rounds: int = 2
) -> None:
    """Each mode in its own process, `rounds` times, modes alternated; p50, p99, longest pause."""
    figure = FIGURE.format(held=held)
    longest: dict[str, float] = {m: 0.0 for m in MODES}
    collections: dict[str, int] = {m: 0 for m in MODES}
    for r in range(rounds):
        for mode in MODES if r % 2 == 0 else tuple(reversed(MODES)):
            got = await _run_worker(settings, mode, held, appends)
            report.series(figure, mode).seconds.extend(got["seconds"])
            longest[mode] = max(longest[mode], got["longest_collection"])
            collections[mode] += got["collections"]
    for mode in MODES:
        slowest = max(report.series(figure, mode).seconds, default=0.0)
        report.notes.append(
            f"{figure}, {mode}: {collections[mode]} collections, the longest {longest[mode] * 1e3:.1f} ms; "
            f"the slowest append {slowest * 1e3:.1f} ms"
        )
    for mode in ("gc default", "gc tuned"):
        report.check(
            f"tiered append p99 / p50 with {held} parsed events held, {mode}",
            report.ratio(figure, mode, mode, at=0.99), 3.0,
        )


if __name__ == "__main__":
    asyncio.run(_worker(json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
