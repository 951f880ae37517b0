"""What the course costs to run: the unit tests and each chapter under nbval.

``python -m recsys_lab timings`` runs the pieces of the test command one at a
time, exactly as ``make test`` runs them, times each, and writes
``results/chapter_times.csv`` (then the README's chapter map shows them).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

__all__ = ["time_test_suite"]

ROOT = Path(__file__).resolve().parents[1]


def time_test_suite(root: Path = ROOT, *, show_progress: bool = True) -> pd.DataFrame:
    """Seconds for ``pytest tests`` and for each ``chapters/*.ipynb`` under nbval.

    Raises ``RuntimeError`` naming the first part that fails: a timing of a
    broken chapter is no timing.
    """
    chapters = sorted((root / "chapters").glob("[0-9][0-9]_*.ipynb"))
    parts = [("unit tests", ["tests"])] + [(path.stem, [str(path), "--nbval-lax", "--nbval-current-env"]) for path in chapters]
    rows = []
    for name, args in tqdm(parts, disable=not show_progress, desc="timing the test suite"):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                              cwd=root, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed under pytest:\n{done.stdout[-3000:]}")
        rows.append({"part": name, "seconds": round(seconds, 1)})
    return pd.DataFrame(rows)
