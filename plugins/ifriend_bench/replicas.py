"""The scale-out figure: events/s of 1 and of 2 bot processes on the same servers.

Each worker process opens a tiered `App`, creates its sessions, waits for the word
"go" on stdin, appends concurrently to all of them, and prints what it did as JSON
(events, seconds, CPU seconds). The parent starts the workers of a round together, so
the 1-process and 2-process rounds alternate in one run and share the servers' drift.

    python -m ifriend_bench.replicas '<settings as JSON>' SESSIONS APPENDS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Any

FIGURE = "replicas: events/s appending"


async def _worker(settings: dict[str, Any], sessions: int, appends: int) -> None:
    from ifriend.plugin_api import App, Settings
    from .sessions import APP, USER, make_event

    tag = uuid.uuid4().hex[:8]
    async with App(Settings.model_validate(settings)) as app:
        service = app.session_service
        made = [
            await service.create_session(app_name=APP, user_id=USER, session_id=f"rep-{tag}-{k}")
            for k in range(sessions)
        ]
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def writer(session: Any) -> None:
            for i in range(appends):
                await service.append_event(session, make_event(i))

        cpu, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(writer(s) for s in made))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(json.dumps({"events": sessions * appends, "seconds": elapsed, "cpu": cpu}), flush=True)


async def _round(settings: dict[str, Any], processes: int, sessions: int, appends: int) -> dict[str, float]:
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ifriend_bench.replicas", json.dumps(settings), str(sessions),
            str(appends), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    try:
        for w in workers:
            line = await asyncio.wait_for(w.stdout.readline(), timeout=120)  # type: ignore[union-attr]
            if not json.loads(line or b"{}").get("ready"):
                raise RuntimeError("a benchmark worker did not start")
        start = time.perf_counter()
        for w in workers:
            w.stdin.write(b"go\n")  # type: ignore[union-attr]
            await w.stdin.drain()  # type: ignore[union-attr]
        done = [json.loads(await asyncio.wait_for(w.stdout.readline(), 600)) for w in workers]  # type: ignore[union-attr]
        wall = time.perf_counter() - start
    finally:
        for w in workers:
            if w.returncode is None:
                w.stdin.close()  # type: ignore[union-attr]
                try:
                    await asyncio.wait_for(w.wait(), 60)
                except TimeoutError:
                    w.kill()
    events = sum(d["events"] for d in done)
    return {"rate": events / wall, "cpu_per_event": sum(d["cpu"] for d in done) / events}


async def bench_replicas(
    report: Any, settings: dict[str, Any], *, sessions: int, appends: int, rounds: int = 2
) -> None:
    """1 and 2 worker processes, alternating for `rounds` rounds; rates and CPU per event."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    for r in range(rounds):
        for processes in ((1, 2) if r % 2 == 0 else (2, 1)):
            got = await _round(settings, processes, sessions, appends)
            rates[processes].append(got["rate"])
            cpu[processes].append(got["cpu_per_event"])
    for processes, label in ((1, "1 process"), (2, "2 processes")):
        report.rates[(FIGURE, label)] = sum(rates[processes]) / len(rates[processes])
        per_event = sum(cpu[processes]) / len(cpu[processes])
        report.notes.append(f"replicas ({label}): {per_event * 1e3:.2f} ms of CPU per append")
    report.check(
        "events/s, 2 processes / 1 process (scale-out)",
        report.rates[(FIGURE, "2 processes")] / report.rates[(FIGURE, "1 process")],
        1.7,
        higher_is_better=True,
    )


if __name__ == "__main__":
    asyncio.run(_worker(json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
