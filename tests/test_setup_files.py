"""The two ways to install the course must name the same packages."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_names(requirements):
    return {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:") + 1
    pip_lines = [line.strip()[2:] for line in lines[start:] if line.strip().startswith("- ")]
    conda_pip = [line for line in pip_lines if not line.startswith("-e")]
    assert sorted(conda_pip) == sorted(project)  # same names, same pins
    assert "torch==2.13.0" in project  # unpinned torch pulls a multi-GB CUDA build


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
