"""`ifriend adk init AGENTS_DIR` writes services.py, never over someone else's."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ifriend.adk import SERVICES_PY
from ifriend.cli import load_cli


def init(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(load_cli(), [*args])
    return result.exit_code, result.output


def test_init_writes_services_py_and_prints_the_commands(tmp_path: Path) -> None:
    config = tmp_path / "ifriend.toml"
    config.write_text("")
    code, out = init("--config", str(config), "adk", "init", str(tmp_path))
    assert code == 0, out
    assert (tmp_path / "services.py").read_text() == SERVICES_PY == "from ifriend.adk import register\nregister()\n"
    uri = f"ifriend://{config}"
    assert f"adk web {tmp_path} --session_service_uri {uri} --memory_service_uri {uri}" in out
    assert f"adk api_server {tmp_path} --session_service_uri {uri} --memory_service_uri {uri}" in out


def test_init_again_changes_nothing(tmp_path: Path) -> None:
    services = tmp_path / "services.py"
    services.write_text("import logging\nfrom ifriend.adk import register\nregister()\n")
    code, out = init("adk", "init", str(tmp_path))
    assert code == 0, out
    assert f"{services} already registers ifriend" in out
    assert services.read_text().startswith("import logging\n")


def test_init_refuses_to_overwrite_another_services_py(tmp_path: Path) -> None:
    services = tmp_path / "services.py"
    services.write_text("from my_services import register_mine\nregister_mine()\n")
    code, out = init("adk", "init", str(tmp_path))
    assert code == 1
    assert "exists and does not register ifriend; not overwritten" in out
    assert SERVICES_PY in out
    assert services.read_text() == "from my_services import register_mine\nregister_mine()\n"


def test_init_needs_an_existing_folder(tmp_path: Path) -> None:
    code, out = init("adk", "init", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in out
