"""The plugin surface: built-in plugins import from ifriend only what `ifriend.plugin_api`
exports, use only the public names of its `telemetry`, and docs/plugins.md describes them all."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ifriend import plugin_api, telemetry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "plugins.md"
PLUGIN_FILES = sorted((ROOT / "plugins").glob("ifriend_*/**/*.py"))
# The one exception: the telemetry benchmark measures the recorder itself, so it builds the
# SDKs and recorders an App owns.
INTERNALS = {
    "plugins/ifriend_bench/overhead.py": {
        ("ifriend.config", "TelemetrySettings"),
        ("ifriend.telemetry.recorder", "Recorder"),
        ("ifriend.telemetry.setup", "Telemetry"),
        ("ifriend.telemetry.setup", "build_telemetry"),
    }
}


def ifriend_imports(tree: ast.AST) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, names) of each import of `ifriend` or a module under it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "ifriend" or node.module.startswith("ifriend."):
                yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "ifriend" or alias.name.startswith("ifriend."):
                    yield node.lineno, alias.name, []


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_plugins_are_found() -> None:
    assert {p.parent.name for p in PLUGIN_FILES if p.name == "__init__.py"} >= {
        "ifriend_bench", "ifriend_console", "ifriend_inprocess", "ifriend_mysql", "ifriend_redis", "ifriend_slack",
        "ifriend_tiered",
    }


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=relative)
def test_a_builtin_plugin_imports_only_the_plugin_api(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    wrong = [
        f"{relative(path)}:{line}: {module} {names}"
        for line, module, names in ifriend_imports(tree)
        if module != "ifriend.plugin_api" or not names or not set(names) <= set(plugin_api.__all__)
        if not {(module, name) for name in names} <= INTERNALS.get(relative(path), set())
    ]
    assert not wrong, "import these through ifriend.plugin_api (add them there if plugins need them):\n" + "\n".join(wrong)


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=relative)
def test_a_builtin_plugin_uses_only_public_telemetry(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    used = {
        (node.lineno, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "telemetry"
    }
    wrong = sorted(f"{relative(path)}:{line}: telemetry.{attr}" for line, attr in used if attr not in telemetry.__all__)
    assert not wrong, "not in ifriend.telemetry.__all__:\n" + "\n".join(wrong)


def test_the_plugin_api_exports_what_it_lists() -> None:
    assert len(set(plugin_api.__all__)) == len(plugin_api.__all__)
    assert [name for name in plugin_api.__all__ if not hasattr(plugin_api, name)] == []
    assert [name for name in telemetry.__all__ if not hasattr(telemetry, name)] == []


@pytest.mark.parametrize(("module", "prefix"), [(plugin_api, ""), (telemetry, "telemetry.")], ids=["plugin_api", "telemetry"])
def test_docs_describe_every_name_of_the_surface(module: object, prefix: str) -> None:
    documented = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)", DOCS.read_text()))
    missing = [name for name in module.__all__ if prefix + name not in documented]  # type: ignore[attr-defined]
    assert not missing, f"{relative(DOCS)} does not describe: {missing}"
