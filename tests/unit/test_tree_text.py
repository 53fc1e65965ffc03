"""The tracked text files hold no merge-conflict markers: a merge resolved by committing both
sides once left README.md with two contradicting paragraphs, which ruff does not read."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.MULTILINE)
TEXT = (".md", ".py", ".toml", ".cfg", ".html", ".css", ".js", ".json", ".txt", ".ini", ".yml")


def tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed if name.endswith(TEXT)]


def test_no_tracked_text_file_holds_a_conflict_marker():
    files = tracked_text_files()
    assert len(files) > 50
    marked = [str(path.relative_to(ROOT)) for path in files
              if path.is_file() and MARKER.search(path.read_text(errors="replace"))]
    assert marked == []
