"""The scale-out figure: events/s of 1 and of 2 bot processes on the same servers.

Each worker process opens a tiered `App`, creates its sessions, waits for the word
"go" on stdin, appends concurrently to all of them, and prints what it did as JSON
(events, seconds, CPU seconds). The parent starts the workers of a round together, so
the 1-process and 2-process rounds alternate in one run and share the servers' drift,
and notes how busy the whole machine's CPUs were meanwhile (a second process adds
capacity only where a core is left for it).

    python -m ifriend_bench.replicas '<settings as JSON>' SESSIONS APPENDS
"""

from __future__ import annotations

import asyncio
import json
import os
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


def machine_cpu() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine so far (Linux `/proc/stat`), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [float(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


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
        start, machine = time.perf_counter(), machine_cpu()
        for w in workers:
            w.stdin.write(b"go\n")  # type: ignore[union-attr]
            await w.stdin.drain()  # type: ignore[union-attr]
        done = [json.loads(await asyncio.wait_for(w.stdout.readline(), 600)) for w in workers]  # type: ignore[union-attr]
        wall = time.perf_counter() - start
        after = machine_cpu()
    finally:
        for w in workers:
            if w.returncode is None:
                w.stdin.close()  # type: ignore[union-attr]
                try:
                    await asyncio.wait_for(w.wait(), 60)
                except TimeoutError:
                    w.kill()
    events = sum(d["events"] for d in done)
    busy = (after[0] - machine[0]) / (after[1] - machine[1]) if machine and after else float("nan")
    return {"rate": events / wall, "cpu_per_event": sum(d["cpu"] for d in done) / events, "busy": busy}


async def bench_replicas(
    report: Any, settings: dict[str, Any], *, sessions: int, appends: int, rounds: int = 2
) -> None:
    """1 and 2 worker processes, alternating for `rounds` rounds; rates and CPU per event."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    busy: dict[int, list[float]] = {1: [], 2: []}
    for r in range(rounds):
        for processes in ((1, 2) if r % 2 == 0 else (2, 1)):
            got = await _round(settings, processes, sessions, appends)
            rates[processes].append(got["rate"])
            cpu[processes].append(got["cpu_per_event"])
            busy[processes].append(got["busy"])
    for processes, label in ((1, "1 process"), (2, "2 processes")):
        report.rates[(FIGURE, label)] = sum(rates[processes]) / len(rates[processes])
        per_event = sum(cpu[processes]) / len(cpu[processes])
        machine = sum(busy[processes]) / len(busy[processes])
        report.notes.append(
            f"replicas ({label}): {per_event * 1e3:.2f} ms of CPU per append; the machine's "
            f"{os.cpu_count()} CPUs {machine:.0%} busy meanwhile (servers and other work included)"
        )
    report.check(
        "events/s, 2 processes / 1 process (scale-out)",
        report.rates[(FIGURE, "2 processes")] / report.rates[(FIGURE, "1 process")],
        1.7,
        higher_is_better=True,
    )


if __name__ == "__main__":
    asyncio.run(_worker(json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
