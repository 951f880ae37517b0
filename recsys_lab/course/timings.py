"""What the course costs to run: the unit tests and each chapter under nbval.

``python -m recsys_lab timings`` runs the README's test command once (the
plain ``pytest`` that ``make test`` runs; pyproject.toml configures it) with
a JUnit report, and sums the report's per-test times into one row for the
unit tests and one per chapter;
``--junit FILE`` reads a report from a run you already made (CI, say). The
result goes to ``results/chapter_times.csv`` and the README's chapter map.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

__all__ = ["parts_from_junit", "time_test_suite"]

ROOT = Path(__file__).resolve().parents[2]


def parts_from_junit(report: Path) -> pd.DataFrame:
    """Seconds per part of the suite: ``unit tests``, one row per chapter, and
    ``pytest total`` (the whole run, kernel start-ups included).

    nbval reports each notebook cell as a test case whose class name is
    ``chapters.<notebook>.ipynb``; every other test case is a unit test.
    """
    root = ET.parse(report).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    seconds: dict[str, float] = {}
    for case in suite.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            raise RuntimeError(f"{case.get('classname')}::{case.get('name')} failed: a timing of a broken run is no timing.")
        source = case.get("classname", "")
        part = source.removeprefix("chapters.").removesuffix(".ipynb") if source.startswith("chapters.") else "unit tests"
        seconds[part] = seconds.get(part, 0.0) + float(case.get("time", 0.0))
    seconds["pytest total"] = float(suite.get("time"))
    return pd.DataFrame({"part": list(seconds), "seconds": [round(v, 1) for v in seconds.values()]})


def time_test_suite(root: Path = ROOT) -> pd.DataFrame:
    """Run the test command once and return :func:`parts_from_junit` of its report."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.xml"
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", f"--junitxml={report}"], cwd=root)
        if done.returncode != 0:
            raise RuntimeError(f"the test command failed (exit code {done.returncode}); fix it before timing it.")
        return parts_from_junit(report)
