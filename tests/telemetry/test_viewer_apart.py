"""Recording (`ifriend.telemetry`) stays apart from viewing (`ifriend.traces`): the App,
the stores, telemetry and the plugins never import the viewer; only the command line does."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIEWER = "ifriend.traces"
MAY_IMPORT_THE_VIEWER = {"ifriend/cli.py"}

# Imports everything that records: the App, its services, telemetry and every built-in plugin
# module; prints the viewer's modules that came along.
IMPORT_ALL_BUT_THE_CLI = """
import importlib, pkgutil, sys
import ifriend.app, ifriend.sessions, ifriend.memory, ifriend.telemetry
names = [m.name for m in pkgutil.walk_packages(ifriend.telemetry.__path__, "ifriend.telemetry.")]
for entry in __import__("importlib.metadata").metadata.entry_points(group="ifriend"):
    package = importlib.import_module(entry.value)
    names += [m.name for m in pkgutil.walk_packages(package.__path__, entry.value + ".")]
for name in names:
    importlib.import_module(name)
print(len(names), *sorted(m for m in sys.modules if m == "ifriend.traces" or m.startswith("ifriend.traces.")))
"""


def test_the_app_the_stores_and_the_plugins_do_not_load_the_viewer() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_BUT_THE_CLI], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    imported, *viewer = done.stdout.split()
    assert int(imported) > 30, done.stdout  # the plugins' modules were imported
    assert viewer == []


def test_only_the_command_line_imports_the_viewer() -> None:
    found = []
    for path in sorted([*(ROOT / "ifriend").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]):
        where = str(path.relative_to(ROOT))
        if where.startswith("ifriend/traces/") or where in MAY_IMPORT_THE_VIEWER:
            continue
        for node in ast.walk(ast.parse(path.read_text(), where)):
            modules = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0
                else [a.name for a in node.names] if isinstance(node, ast.Import)
                else []
            )
            relative = isinstance(node, ast.ImportFrom) and node.level > 0 and "traces" in (node.module or "")
            if relative or any(m == VIEWER or m.startswith(VIEWER + ".") for m in modules):
                found.append(f"{where}:{node.lineno}")
    assert found == [], "the viewer is imported by the command line only"
