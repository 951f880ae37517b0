"""Render the committed results files into the README (tables and a figure).

The README's results table and the run-time column of its chapter map are
generated, never typed: ``python -m recsys_lab report`` rewrites the text
between ``<!-- results:start -->`` and ``<!-- results:end -->`` from
``results/benchmark.csv`` and the "time" column from
``results/chapter_times.csv``; a unit test checks that the README matches.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

__all__ = ["results_markdown", "update_readme", "plot_ndcg", "render_readme"]

START, END = "<!-- results:start -->", "<!-- results:end -->"
METRICS = ("HR@10", "NDCG@10", "MRR")


def _with_interval(row: pd.Series, metric: str) -> str:
    return f"{row[metric]:.4f} [{row[f'{metric} low']:.4f}, {row[f'{metric} high']:.4f}]"


def results_markdown(results: pd.DataFrame, chapter_times: pd.DataFrame | None = None) -> str:
    """The results table (and the test-suite cost line) as Markdown."""
    lines = [
        "| model | chapter | implementation | HR@10 [95% CI] | NDCG@10 [95% CI] | MRR [95% CI] | coverage@10 "
        "| popularity@10 | fit (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in results.iterrows():
        cells = [row["model"], row["chapter"], row["implementation"], *(_with_interval(row, m) for m in METRICS),
                 f"{row['coverage@10']:.3f}", f"{row['popularity@10']:.0f}", f"{row['fit seconds']:.1f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    users = int(results["users"].iloc[0])
    lines += [
        "",
        f"Test targets of all {users} users; every model fitted with its chapter's chosen settings on the training "
        "events plus each user's validation event, then ranking every unseen item (ties count against the target); "
        "95% bootstrap intervals over users. Coverage@10: share of the catalogue in at least one top-10 list; "
        "popularity@10: mean number of training users of a recommended film. Overlapping intervals do not decide "
        "between two models: the chapters compare them with paired intervals. Fit times on the 2-core CPU that "
        "runs CI (`make benchmark`).",
        "",
        "![NDCG@10 per model](results/ndcg.png)",
    ]
    if chapter_times is not None:
        seconds = chapter_times.set_index("part")["seconds"]
        chapters = seconds.drop(["unit tests", "pytest total"], errors="ignore")
        lines += ["", f"The test command's pytest run took {seconds['pytest total'] / 60:.1f} minutes on the same machine, "
                      f"in two worker processes; added up over both, the unit tests took {seconds['unit tests']:.0f} s and "
                      f"the {len(chapters)} chapters {chapters.sum() / 60:.1f} min "
                      f"(`make timings`; per chapter in the chapter map)."]
    return "\n".join(lines)


def _chapter_map_with_times(readme: str, chapter_times: pd.DataFrame) -> str:
    seconds = {part[:2]: value for part, value in zip(chapter_times["part"], chapter_times["seconds"])}

    def fill(match: re.Match) -> str:
        number = match.group(1)
        time_cell = f"{seconds[number]:.0f} s" if number in seconds else "-"
        return f"| {number} |{match.group(2)}| {time_cell} |"

    # rows of the chapter map: | NN | [title](...) | what you build | time |
    return re.sub(r"^\| (\d\d) \|(.*)\| [^|]* \|$", fill, readme, flags=re.MULTILINE)


def render_readme(readme: str, results: pd.DataFrame, chapter_times: pd.DataFrame | None) -> str:
    """The README text with its generated parts replaced."""
    if START not in readme or END not in readme:
        raise ValueError(f"the README has no {START} ... {END} section to fill.")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    readme = f"{head}{START}\n{results_markdown(results, chapter_times)}\n{END}{tail}"
    return readme if chapter_times is None else _chapter_map_with_times(readme, chapter_times)


def update_readme(readme_path: Path, results_dir: Path) -> None:
    """Rewrite ``readme_path`` from ``results_dir``'s CSV files (and redraw the figure)."""
    results = pd.read_csv(results_dir / "benchmark.csv", dtype={"chapter": str})
    times_path = results_dir / "chapter_times.csv"
    chapter_times = pd.read_csv(times_path) if times_path.exists() else None
    plot_ndcg(results, results_dir / "ndcg.png")
    readme_path.write_text(render_readme(readme_path.read_text(), results, chapter_times))


def plot_ndcg(results: pd.DataFrame, path: Path) -> None:
    """A horizontal bar per model: test NDCG@10 with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = results.sort_values("NDCG@10")
    labels = [f"{m} ({impl}, ch. {ch})" for m, impl, ch in zip(ordered["model"], ordered["implementation"], ordered["chapter"])]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(ordered) + 1.2))
    error = [ordered["NDCG@10"] - ordered["NDCG@10 low"], ordered["NDCG@10 high"] - ordered["NDCG@10"]]
    ax.barh(labels, ordered["NDCG@10"], xerr=error, color="tab:blue", capsize=3)
    ax.set(xlabel="test NDCG@10 with its 95% bootstrap interval", title="MovieLens-100K, leave last out, full ranking")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
