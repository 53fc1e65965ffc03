"""Fixtures the unit tests share."""

from __future__ import annotations

from pathlib import Path

import pytest
from tablecopy import copy_tables


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A writable copy of the packaged rule tables (mappings/)."""
    return copy_tables(tmp_path)
