"""The docs a newcomer walks: a short README that maps the `docs/` pages, every link in them
pointing at a file and heading that exist, and every code block marked runnable running.

A block is runnable when the line before its opening fence is `<!-- runnable -->`; its lines
run in bash from the repository's root (loopback only, seconds each) and must exit 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250
RUNNABLE = "<!-- runnable -->"
BLOCK_TIMEOUT_S = 120
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in prose_lines(path.read_text()) if line[:1] == "#"}


def broken_links(path: Path) -> list[str]:
    """Every link of `path` whose file or heading does not exist (web links are not fetched:
    the tests stay on loopback)."""
    found = []
    for line in prose_lines(path.read_text()):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                found.append(f"{path.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                found.append(f"{path.name}: {target} (no such heading)")
    return found


def runnable_blocks(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() == RUNNABLE:
            assert FENCE.match(lines[i + 1]), f"{path.name}:{i + 2}: a runnable mark needs a block"
            end = next(j for j in range(i + 2, len(lines)) if FENCE.match(lines[j]))
            blocks.append("\n".join(lines[i + 2 : end]))
    return blocks


def test_the_readme_is_short_and_maps_every_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in readme, f"the README's map misses docs/{page.name}"


def test_every_link_points_at_a_file_and_heading_that_exist() -> None:
    assert [b for page in PAGES for b in broken_links(page)] == []


def test_the_link_check_catches_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## A section, here\n\n[ok](#a-section-here) [ok](page.md#title)\n"
        "[gone](missing.md) [no heading](#nowhere) [web](https://example.com)\n"
        "```\n[in code](ignored.md)\n```\n"
    )
    assert broken_links(page) == [
        "page.md: missing.md (no such file)",
        "page.md: #nowhere (no such heading)",
    ]


BLOCKS = [(page, block) for page in PAGES for block in runnable_blocks(page)]


def test_the_docs_mark_runnable_blocks() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize(
    ("page", "block"), BLOCKS, ids=[f"{p.name}-{n}" for n, (p, _) in enumerate(BLOCKS)]
)
def test_a_runnable_block_runs(page: Path, block: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{page.name}:\n{block}\n{proc.stdout}\n{proc.stderr}"
