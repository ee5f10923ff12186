"""Several runs of one benchmark side by side: each check's value per run, median and spread.

    python -m ifriend_bench.summary perf/results/sessions-*.json

Prints a Markdown table (what perf/README.md reports): one row per check, the value of
each run, the median, [min, max], and how many runs met the target.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def summarize(reports: list[dict[str, Any]]) -> str:
    """A Markdown table of every check found in `reports` (in the order of the first)."""
    names: list[str] = []
    for report in reports:
        names += [c["target"] for c in report["checks"] if c["target"] not in names]
    runs = [{c["target"]: c for c in report["checks"]} for report in reports]
    header = ["check", "limit", *(f"run {i + 1}" for i in range(len(reports))), "median [min, max]", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        found = [run.get(name) for run in runs]
        values = [c["value"] for c in found if c is not None]
        limit = next(c["limit"] for c in found if c is not None)
        cells = [f"{c['value']:.3f}" if c is not None else "" for c in found]
        spread = f"{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"
        met = sum(1 for c in found if c is not None and c["ok"])
        lines.append(f"| {name} | {limit:g} | " + " | ".join(cells) + f" | {spread} | {met}/{len(values)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="JSON reports of `ifriend bench ...`")
    args = parser.parse_args(argv)
    print(summarize([json.loads(path.read_text(encoding="utf-8")) for path in args.reports]))


if __name__ == "__main__":
    main()
