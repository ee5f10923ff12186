"""The JSON-lines file rotates by size, and `ifriend traces` reads the rotated set."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ifriend import App, Settings
from ifriend.telemetry.jsonl import line_file
from ifriend.traces.records import load_spans, trace_files

from .test_traces import invoke, row


def numbered(start: int, count: int, size: int = 100) -> list[bytes]:
    """`count` lines of `size` bytes holding their number."""
    lines = []
    for n in range(start, start + count):
        text = json.dumps({"type": "span", "n": n})
        lines.append((text + " " * (size - len(text) - 1) + "\n").encode())
    return lines


def numbers(paths: list[Path]) -> list[int]:
    return [json.loads(line)["n"] for path in paths for line in path.read_text().splitlines()]


def test_a_batch_past_the_size_rotates_the_set_and_the_oldest_file_goes(tmp_path):
    path = tmp_path / "t.jsonl"
    file = line_file(path, max_bytes=2000, max_files=3).acquire()
    try:
        for batch in range(40):
            file.write(numbered(batch * 3, 3))
    finally:
        file.release()
    files = trace_files(path)
    assert files == [tmp_path / "t.jsonl.2", tmp_path / "t.jsonl.1", path]  # oldest first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl", "t.jsonl.1", "t.jsonl.2"]
    assert all(p.stat().st_size <= 2000 for p in files)
    kept = numbers(files)  # whole lines only, the newest ones, in order
    assert kept == list(range(120 - len(kept), 120))
    assert len(kept) >= 2 * 18  # two full files (18 lines of 100 bytes in 2000) and the current


def test_writers_sharing_a_file_rotate_it_together_without_losing_a_line(tmp_path):
    """As two processes would: separate handles on one path, a lock between them."""
    path = tmp_path / "shared.jsonl"
    writers = [line_file(path, max_bytes=3000, max_files=1000).acquire() for _ in range(2)]

    def write(writer, first: int) -> None:
        for batch in range(100):
            writer.write(numbered(first + batch * 2, 2))

    threads = [threading.Thread(target=write, args=(w, i * 10_000)) for i, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for writer in writers:
        writer.release()
    files = trace_files(path)
    assert len(files) > 10 and all(p.stat().st_size <= 3000 for p in files)
    found = numbers(files)
    assert sorted(found) == sorted([*range(0, 200), *range(10_000, 10_200)])  # each line once
    for first in (0, 10_000):  # each writer's lines in the order written
        mine = [n for n in found if first <= n < first + 10_000]
        assert mine == sorted(mine)


async def test_an_apps_file_rotates_and_ifriend_traces_reads_every_file_of_it(tmp_path):
    path = tmp_path / "traces.jsonl"
    settings = Settings.model_validate(
        {"telemetry": {"exporter": "jsonl", "file": str(path), "max_file_bytes": 4096, "max_files": 50}}
    )
    async with App(settings) as app:
        service = app.session_service
        for i in range(60):
            await service.create_session(app_name="a", user_id="u", session_id=f"s{i}")
            app.telemetry.telemetry.flush()  # one batch each: the file rotates as it grows
    files = trace_files(path)
    assert len(files) > 3 and files[-1] == path
    assert len(load_spans(files).spans) == 60
    result = invoke("traces", str(path))
    assert result.exit_code == 0, result.output
    assert row(result.stdout, "ifriend.session.create_session", "memory")[2] == "60"
    folder = invoke("traces", str(tmp_path))  # a folder: every set in it
    assert row(folder.stdout, "ifriend.session.create_session", "memory")[2] == "60"
