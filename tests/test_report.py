"""The README's generated sections match the committed results files."""

from pathlib import Path

import pandas as pd
import pytest

from recsys_lab.course.report import render_readme, results_markdown
from recsys_lab.course.timings import parts_from_junit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def committed_results():
    times = RESULTS / "chapter_times.csv"
    return (
        pd.read_csv(RESULTS / "benchmark.csv", dtype={"chapter": str}),
        pd.read_csv(times) if times.exists() else None,
    )


@pytest.mark.skipif(not (RESULTS / "benchmark.csv").exists(), reason="no committed results yet")
def test_readme_shows_exactly_the_committed_results():
    readme = (ROOT / "README.md").read_text()
    assert render_readme(readme, *committed_results()) == readme, "run `python -m recsys_lab report`"


def test_results_markdown_formats_intervals_and_times():
    row = {"model": "M", "chapter": "03", "implementation": "recsys_lab", "users": 943, "fit seconds": 1.26,
           "coverage@10": 0.1234, "popularity@10": 201.6}
    for metric, value in (("HR@10", 0.1), ("NDCG@10", 0.05), ("MRR", 0.04)):
        row.update({metric: value, f"{metric} low": value - 0.01, f"{metric} high": value + 0.01})
    times = pd.DataFrame({"part": ["unit tests", "00_data", "pytest total"], "seconds": [30.0, 90.0, 126.0]})
    text = results_markdown(pd.DataFrame([row]), times)
    assert "| M | 03 | recsys_lab | 0.1000 [0.0900, 0.1100] | 0.0500 [0.0400, 0.0600] |" in text
    assert "| 0.123 | 202 | 1.3 |" in text
    assert "took 2.1 minutes" in text and "the unit tests took 30 s and the 1 chapters 1.5 min" in text


def test_junit_report_is_summed_per_chapter(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest" time="10.5">'
        '<testcase classname="tests.test_a" name="t1" time="1.0" />'
        '<testcase classname="tests.test_b" name="t2" time="0.5" />'
        '<testcase classname="chapters.00_data.ipynb" name="Cell 0" time="2.0" />'
        '<testcase classname="chapters.00_data.ipynb" name="Cell 1" time="3.0" />'
        "</testsuite></testsuites>"
    )
    parts = parts_from_junit(report).set_index("part")["seconds"].to_dict()
    assert parts == {"unit tests": 1.5, "00_data": 5.0, "pytest total": 10.5}
    report.write_text(report.read_text().replace('time="0.5" />', 'time="0.5"><failure message="x" /></testcase>'))
    with pytest.raises(RuntimeError, match="test_b::t2 failed"):
        parts_from_junit(report)


def test_render_readme_fills_the_chapter_map_and_needs_markers():
    readme = "| 00 | [Data](x) | tour | - |\n<!-- results:start -->\nold\n<!-- results:end -->\n"
    row = {"model": "M", "chapter": "00", "implementation": "x", "users": 1, "fit seconds": 0.0,
           "coverage@10": 0.5, "popularity@10": 10.0}
    for metric in ("HR@10", "NDCG@10", "MRR"):
        row.update({metric: 0.0, f"{metric} low": 0.0, f"{metric} high": 0.0})
    times = pd.DataFrame({"part": ["unit tests", "00_data", "pytest total"], "seconds": [1.0, 42.0, 45.0]})
    rendered = render_readme(readme, pd.DataFrame([row]), times)
    assert rendered.startswith("| 00 | [Data](x) | tour | 42 s |") and "old" not in rendered
    with pytest.raises(ValueError, match="results:start"):
        render_readme("no markers", pd.DataFrame([row]), None)
