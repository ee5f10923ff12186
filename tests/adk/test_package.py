"""The package: the Dockerfile's build steps make a wheel that, installed into a fresh
virtualenv, gives a working `ifriend` (built-in plugins through entry points, `ifriend chat`).

The fresh virtualenv takes ifriend from the wheel only; its dependencies come from the test's
own environment through a `.pth` file naming a folder of links to every installed package but
ifriend (installing google-adk and its tree again would take minutes and the network)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ifriend import __version__ as VERSION

ROOT = Path(__file__).resolve().parents[2]
OURS = re.compile(r"^(ifriend([_-].*)?|__editable__[._]+ifriend.*)$", re.IGNORECASE)
BUILTINS = {"bench", "console", "memory", "mysql", "redis", "slack", "tiered"}


def build_stage() -> tuple[list[str], list[str]]:
    """The build stage's COPY sources and its `pip wheel` command, from the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text()
    stage = text.split(" AS build", 1)[1].split("\nFROM ", 1)[0]
    sources = [src for line in re.findall(r"^COPY (.+)$", stage, re.M) for src in line.split()[:-1]]
    [run] = re.findall(r"^RUN (.+)$", stage, re.M)
    return sources, run.split()


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def dependencies_folder(tmp_path: Path) -> Path:
    """Links to everything in this environment's site-packages except ifriend itself."""
    site = Path(sysconfig.get_paths()["purelib"])
    folder = tmp_path / "dependencies"
    folder.mkdir()
    for entry in site.iterdir():
        if OURS.match(entry.name) or entry.suffix == ".pth":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel the Dockerfile's build stage makes; its bin/."""
    tmp = tmp_path_factory.mktemp("package")
    sources, command = build_stage()
    assert command[:3] == ["python", "-m", "pip"] and "wheel" in command and "--no-deps" in command
    src = tmp / "src"
    src.mkdir()
    for name in sources:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, src / name)  # type: ignore[operator]
    wheels = tmp / "wheels"
    wheel_args = [wheels.as_posix() if a == "/wheels" else a for a in command[3:-1]] + [str(src)]
    run([sys.executable, "-m", "pip", *wheel_args])
    [wheel] = wheels.glob("ifriend-*.whl")

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)])
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    (Path(purelib) / "dependencies.pth").write_text(str(dependencies_folder(tmp)) + "\n")
    return venv / "bin"


def ifriend(bin_dir: Path, *args: str, stdin: str = "") -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IFRIEND", "PYTHON"))}
    return run(
        [str(bin_dir / "ifriend"), *args], input=stdin, cwd=bin_dir.parent, env=env
    ).stdout


def test_ifriend_comes_from_the_wheel_alone(installed: Path) -> None:
    probe = (
        "import importlib.metadata as m, ifriend, ifriend_slack; "
        "print(ifriend.__file__); print(ifriend_slack.__file__); "
        "print(sum(d.metadata['Name'] == 'ifriend' for d in m.distributions()))"
    )
    out = run([str(installed / "python"), "-c", probe], cwd=installed.parent).stdout.split()
    venv = str(installed.parent)
    assert out[0].startswith(venv) and out[1].startswith(venv), out
    assert out[2] == "1"


def test_the_builtin_plugins_are_found_through_entry_points(installed: Path) -> None:
    plugins = json.loads(ifriend(installed, "plugins", "--json"))["plugins"]
    builtins = {p["name"]: p for p in plugins if p["builtin"]}
    assert set(builtins) == BUILTINS
    assert {p["origin"] for p in builtins.values()} == {f"ifriend=={VERSION}"}
    assert builtins["tiered"]["registers"]["session_backends"] == ["tiered"]
    assert builtins["slack"]["registers"]["channels"] == ["slack"]


def test_ifriend_chat_answers_with_ifriend_echo(installed: Path) -> None:
    out = ifriend(installed, "chat", stdin="my name is Ada\nwhat is my name?\n")
    assert '[ifriend-echo] You said: "my name is Ada". This is the start of our conversation.' in out
    assert '[ifriend-echo] You said: "what is my name?". Earlier you said: "my name is Ada"' in out


def test_ifriend_adk_init_works_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    out = ifriend(installed, "adk", "init", str(tmp_path))
    assert f"wrote {tmp_path}/services.py" in out
    assert (tmp_path / "services.py").read_text() == "from ifriend.adk import register\nregister()\n"
