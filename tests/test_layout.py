"""The layout's rule: the core (`ifriend/`) never imports a plugin (`ifriend_*`), not even lazily."""

from __future__ import annotations

import ast
from pathlib import Path

import ifriend

CORE = Path(ifriend.__file__).parent


def plugin_imports(source: str) -> list[str]:
    """Every `ifriend_*` module `source` imports: import statements anywhere (in functions
    too), `importlib.import_module("...")` and `__import__("...")` with a literal name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            continue
        found += [name for name in names if name.split(".")[0].startswith("ifriend_")]
    return found


def test_the_check_sees_every_form_of_import() -> None:
    source = """
import ifriend_redis
from ifriend_slack.testing import FakeSlack
import importlib

def lazy():
    import ifriend_mysql.store as store
    importlib.import_module("ifriend_tiered")
    return __import__("ifriend_console")

from ifriend.app import App
from . import ifriend_lookalike
"""
    assert plugin_imports(source) == [
        "ifriend_redis", "ifriend_slack.testing", "ifriend_mysql.store", "ifriend_tiered", "ifriend_console"
    ]


def test_the_core_never_imports_a_plugin() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 20, f"too few modules under {CORE}: is it the core?"
    offenders = {
        str(path.relative_to(CORE.parent)): names
        for path in modules
        if (names := plugin_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
