"""A writable copy of the packaged rule tables, for tests that break one on purpose."""

from __future__ import annotations

import importlib.resources
import shutil
from pathlib import Path

PACKAGED = Path(str(importlib.resources.files("consent_gap.mappings_data")))


def copy_tables(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(PACKAGED, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


def edit(folder: Path, name: str, old: str, new: str) -> None:
    """Replace the first `old` in one table of the copy (it must be there)."""
    path = folder / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))
