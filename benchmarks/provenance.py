"""What made a results file: the command line, when, and at which commit.

Every benchmark that writes benchmarks/results/*.json puts these three keys at the top of
its document, so the docs site's results pages (docs/gen_results_pages.py) can say where
each figure came from without anyone copying it by hand.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def provenance() -> dict[str, str]:
    """`command` as a reader would retype it (from the repository root), the UTC date, and
    the commit of the code that ran (with `-dirty` when the tree had uncommitted changes)."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(REPO))
    except ValueError:
        shown = sys.argv[0]
    command = shlex.join([".venv/bin/python", shown, *sys.argv[1:]])
    return {"command": command, "date": datetime.now(UTC).strftime("%Y-%m-%d"), "commit": _commit()}


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head
