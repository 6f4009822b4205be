"""The docs stay true: generated tables are current, every link and anchor resolves, and the README's
two commands are what CI and a new user run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "validation").rglob("README.md")),
    ROOT / "tools" / "README.md",
]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_anchor_resolves(doc):
    text = FENCE.sub("", doc.read_text())
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        file, _, anchor = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        if not dest.exists():
            bad.append(f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading '#{anchor}' in {dest.relative_to(ROOT)}")
    assert not bad, bad


def test_slug_follows_github():
    assert slug("Points that cannot exist") == "points-that-cannot-exist"
    assert slug("The device model (`astrasim calibrate-device`)") == "the-device-model-astrasim-calibrate-device"


def test_readme_test_command_is_what_ci_runs():
    """.ci/run is the README's test command (plus the slow variants), so a green CI means the README works."""
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    main_job = [c for c in commands if "astrasim sweep scenarios/wifi.yaml" in c]
    tests = [c for c in commands if "pytest" in c]
    assert main_job and tests, "the README shows the main job and the test command"
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests[0].replace("python -m pytest", "ASTRASIM_SLOW=1 python -m pytest") in ci


def test_generated_tables_are_current():
    """docs/results.md's generated tables equal what tools/docs_tables.py computes today."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "docs_tables.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_readme_picture_is_drawn_by_the_script(tmp_path):
    """docs/img/wifi_speedup.png is the main job's plot, redrawn by tools/docs_tables.py."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import docs_tables
    finally:
        sys.path.remove(str(ROOT / "tools"))
    out = docs_tables.draw_picture(tmp_path / "wifi_speedup.png")
    assert out.stat().st_size > 10_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "docs/img/wifi_speedup.png" in (ROOT / "README.md").read_text() and docs_tables.PICTURE.is_file()
