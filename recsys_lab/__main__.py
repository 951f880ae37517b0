"""Command line of the course (``python -m recsys_lab --help``).

``fetch ml-100k`` caches the dataset; ``serve --store PATH`` serves an
embedding store over HTTP; ``tune MODEL`` searches a model's settings on the
validation targets and records them; ``benchmark`` and ``timings`` measure
the course and ``report`` writes what they measured into the README.
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
    tune = commands.add_parser("tune", help="search a model's settings on the validation targets (Optuna) and record "
                               "them in recsys_lab/course/chosen_settings.json")
    tune.add_argument("model", help="a name from recsys_lab.course.tuning_spaces.TASKS, or 'all'")
    tune.add_argument("--trials", type=int, help="most trials (default: the task's)")
    tune.add_argument("--timeout", type=float, help="seconds per model (default: the task's)")
    serve = commands.add_parser("serve", help="serve an embedding store over HTTP (recsys_lab.serving.service)")
    serve.add_argument("--store", required=True, help="folder of a recsys_lab.serving.store.EmbeddingStore")
    serve.add_argument("--version", help="version to serve (default: the store's current one)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--admin-token-file", help="file holding the token that POST /reload requires (default: "
                       "$RECSYS_LAB_ADMIN_TOKEN or $RECSYS_LAB_ADMIN_TOKEN_FILE; none: admin endpoints answer 403)")
    serve.add_argument("--request-timeout", type=float, default=10.0,
                       help="seconds a client has to send a whole request before it is disconnected (default: 10)")
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
    elif args.command == "tune":
        from recsys_lab.course.tuning_spaces import TASKS, record, run_task
        from recsys_lab.data import leave_last_out, load_movielens_100k

        names = sorted(TASKS) if args.model == "all" else [args.model]
        unknown = [name for name in names if name not in TASKS]
        if unknown:
            print(f"no search space for {unknown}; choose from {sorted(TASKS)} or 'all'", file=sys.stderr)
            return 2
        split = leave_last_out(load_movielens_100k().interactions)
        for name in names:
            entry = record(name, run_task(name, split, n_trials=args.trials, timeout=args.timeout, show_progress=True))
            edge = f"; on the edge of its range: {entry['on_edge']} (widen and search again)" if entry["on_edge"] else ""
            print(f"{name}: {entry['params']} (valid NDCG@10 {entry['best_valid_ndcg@10']:.4f}, "
                  f"{entry['n_trials']} trials){edge}")
    elif args.command == "serve":
        import uvicorn

        from recsys_lab.serving.server import server_config
        from recsys_lab.serving.service import create_app, read_admin_token

        try:
            token = read_admin_token(token_file=args.admin_token_file)
        except (ValueError, OSError) as exc:  # a weak token, an unreadable token file
            print(exc, file=sys.stderr)
            return 2
        logging.getLogger("recsys_lab").info("admin endpoints (POST /reload) are %s", "enabled (token set)"
                                             if token else "disabled: set RECSYS_LAB_ADMIN_TOKEN to enable them")
        app = create_app(args.store, version=args.version, admin_token=token)
        config = server_config(app, host=args.host, port=args.port, request_timeout=args.request_timeout,
                               log_level="info")
        uvicorn.Server(config).run()
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
