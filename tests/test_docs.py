"""The docs hold together: every relative link resolves, every hook is documented with its
arguments on the hooks page, and the README stays a short tour."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import ifriend.hookspecs as specs
from ifriend.plugins import hook_names

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "perf" / "README.md"]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    in_code = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"^#{1,6} (.+)$", line)):
            base = slug(m.group(1))
            name, n = base, 1
            while name in found:
                name, n = f"{base}-{n}", n + 1
            found.add(name)
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [target for target in LINK.findall(text) if not re.match(r"^[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_every_hook_is_documented_with_its_arguments() -> None:
    text = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^### `(\w+)\(([^)]*)\)`", text, re.M))
    assert set(documented) == set(hook_names())
    for name, arguments in documented.items():
        expected = [p for p in inspect.signature(getattr(specs, name)).parameters]
        assert [a.strip() for a in arguments.split(",") if a.strip()] == expected, name


def test_the_readme_is_a_short_tour() -> None:
    readme = (ROOT / "README.md").read_bytes()
    assert len(readme) < 12 * 1024
    assert readme.startswith(b"# ifriend")
    assert b"make run" in readme[:400] and b"make test" in readme[:400]
