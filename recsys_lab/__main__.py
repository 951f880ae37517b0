"""Command line of the course (``python -m recsys_lab --help``).

``fetch ml-100k`` caches the dataset; ``serve --store PATH`` serves an
embedding store over HTTP; ``benchmark`` and ``timings`` measure the course
and ``report`` writes what they measured into the README.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys_lab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="download, verify and cache a dataset ahead of time")
    fetch.add_argument("dataset", choices=["ml-100k"])
    fetch.add_argument("--path", help="your own copy: a folder or zip with the GroupLens or RecBole files")
    fetch.add_argument("--cache-dir", help="where to keep the verified tables (default: datasets/cache)")
    commands.add_parser("benchmark", help="fit every top-N model on the shared protocol; write results/ and the README table")
    timings = commands.add_parser("timings", help="time the unit tests and each chapter under nbval; update the README chapter map")
    timings.add_argument("--junit", help="read the times from this pytest JUnit report instead of running the suite")
    commands.add_parser("report", help="re-render the README's generated sections from results/")
    serve = commands.add_parser("serve", help="serve an embedding store over HTTP (recsys_lab.serving.service)")
    serve.add_argument("--store", required=True, help="folder of a recsys_lab.serving.store.EmbeddingStore")
    serve.add_argument("--version", help="version to serve (default: the store's current one)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if args.command == "fetch":
        from recsys_lab.data.movielens import DatasetUnavailableError, load_movielens_100k

        try:
            movielens = load_movielens_100k(args.path, cache_dir=args.cache_dir)
        except DatasetUnavailableError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{movielens!r}: ready")
    elif args.command == "serve":
        import uvicorn

        from recsys_lab.serving.service import create_app

        uvicorn.run(create_app(args.store, version=args.version), host=args.host, port=args.port)
    else:  # benchmark, timings, report: results/ and the README's generated sections
        from recsys_lab.course.report import update_readme

        root = Path(__file__).resolve().parents[1]
        results = root / "results"
        results.mkdir(exist_ok=True)
        if args.command == "benchmark":
            from recsys_lab.course.benchmark import run_benchmark

            table = run_benchmark(show_progress=True)
            table.to_csv(results / "benchmark.csv", index=False, float_format="%.6g")
            print(table.round(4).to_string(index=False))
        elif args.command == "timings":
            from recsys_lab.course.timings import parts_from_junit, time_test_suite

            times = parts_from_junit(Path(args.junit)) if args.junit else time_test_suite()
            times.to_csv(results / "chapter_times.csv", index=False)
            print(times.to_string(index=False))
        update_readme(root / "README.md", results)
        print(f"updated {root / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
