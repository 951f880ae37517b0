"""Command line: ``python -m recsys_lab fetch ml-100k``, ``python -m recsys_lab serve --store PATH`` (and ``--help``)."""

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
    commands.add_parser("timings", help="time the unit tests and each chapter under nbval; update the README chapter map")
    commands.add_parser("report", help="re-render the README's generated sections from results/")
    serve = commands.add_parser("serve", help="serve an embedding store over HTTP (recsys_lab.serving)")
    serve.add_argument("--store", required=True, help="folder of a recsys_lab.store.EmbeddingStore")
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

        from recsys_lab.serving import create_app

        uvicorn.run(create_app(args.store, version=args.version), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
