"""axe-core (from npm) for the browser tests: where its script is, and a run in a frame.

The script is injected with `page.add_init_script`, which the browser runs in every frame as
it is created: the app's Content-Security-Policy (`script-src 'self'`) is left in force, and
nothing is fetched from the network. scripts/test installs axe-core when it is missing
(`npm install --prefix .cache/axe axe-core@4`); AXE_CORE_JS names another copy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
AXE_CORE_JS = Path(os.environ.get(
    "AXE_CORE_JS", REPO / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"))
#: The impacts a page must not have.
BLOCKING = ("serious", "critical")


def available() -> bool:
    return AXE_CORE_JS.is_file()


def install(page: Any) -> None:
    """Make axe-core available in every frame the page loads from now on."""
    page.add_init_script(path=str(AXE_CORE_JS))


def violations(frame: Any, impacts: tuple[str, ...] = BLOCKING) -> list[dict]:
    """The violations of `impacts` in the frame's document, each with its rule and nodes."""
    found = frame.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))")
    return [v for v in found if v["impact"] in impacts]
