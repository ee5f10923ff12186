"""The `ifriend traces` command (registered by `ifriend.cli`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .records import load_spans, parse_since, slowest_turns, trace_files
from .report import format_table, format_waterfall, summarize, timeline


@click.command("traces")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--slowest", "slowest", type=click.IntRange(min=1), default=None, metavar="N",
              help="Also show the N slowest turns as waterfalls.")
@click.option("--since", default=None, metavar="WHEN",
              help="Only spans started since: 10m, 2h, 1h30m, 7d ago, or an ISO time.")
@click.option("--op", "ops", multiple=True, metavar="PATTERN",
              help="Only these operations: a glob (ifriend.session.*) or part of the name; repeatable.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a self-contained HTML report (histograms, p50/p99 and reads by tier "
                   "over time, waterfalls) to this file.")
@click.pass_obj
def traces_command(
    state: Any, path: Path | None, slowest: int | None, since: str | None, ops: tuple[str, ...],
    html_path: Path | None,
) -> None:
    """Latency per operation and tier (count, p50, p90, p99, max, histogram) from a
    JSON-lines trace file and the files rotated from it, or a folder of them (default:
    [telemetry] file)."""
    if path is None:
        path = Path(state.settings().telemetry.file)
    if not path.exists():
        raise click.ClickException(
            f"no trace file at {path} (set [telemetry] exporter = \"jsonl\" and run the bot, "
            "or give a PATH)"
        )
    files = trace_files(path)
    if not files:
        raise click.ClickException(f"no *.jsonl files in {path}")
    try:
        since_ns = parse_since(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    loaded = load_spans(files)
    stats = summarize(loaded.spans, since_ns=since_ns, ops=ops)
    click.echo(format_table(stats))
    if loaded.bad_lines:
        click.echo(f"({loaded.bad_lines} lines could not be read and were skipped)", err=True)
    count = slowest or (5 if html_path else 0)
    roots = slowest_turns(loaded.spans, count, since_ns=since_ns, ops=ops) if count else []
    if slowest:
        click.echo("")
        click.echo(f"slowest {len(roots)} turns:" if roots else "no turns match")
        for root in roots:
            click.echo("")
            click.echo(format_waterfall(root))
    if html_path is not None:
        from .html import render_html

        filters = " ".join(
            part
            for part in (f"--since {since}" if since else "", *(f"--op {o}" for o in ops))
            if part
        )
        page = render_html(
            stats,
            roots,
            sources=[str(f) for f in files],
            filters=filters,
            span_count=sum(s.count for s in stats),
            over_time=timeline(loaded.spans, since_ns=since_ns, ops=ops),
        )
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(page, encoding="utf-8")
        click.echo(f"wrote {html_path} ({len(page) // 1024 + 1} KiB) at {time.strftime('%H:%M:%S')}", err=True)
