"""Recall@k against queries per second for every faiss index family, on a synthetic catalogue.

Exact (flat) search and every approximate index are timed in the same run,
on the same number of faiss threads, so the speed-up column is a ratio of
measurements taken under the same conditions. Chapter 07 runs a smaller
version of this; this script may go bigger.

Usage::

    .venv/bin/python benchmarks/retrieval.py                    # 1,000,000 x 64, 1,000 queries, 2 threads
    .venv/bin/python benchmarks/retrieval.py --items 200000 --quick
    .venv/bin/python benchmarks/retrieval.py --items 5000000 --threads 8 --csv results.csv
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# spinning OpenMP threads make faiss crawl on a busy machine; must be set before faiss loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from recsys_lab.data import synthetic_factors  # noqa: E402
from recsys_lab.retrieval.index import build_index  # noqa: E402
from recsys_lab.retrieval.measure import measure_search  # noqa: E402


def index_specs(n_items: int, quick: bool):
    """(name, build_index arguments, search-time knob, values) for each family."""
    nlist = max(16, int(n_items**0.5 / 4))  # few, large taste clusters: a coarse partition suffices
    specs = [
        ("IVF-Flat, IP", dict(kind="ivf", nlist=nlist), "nprobe", (1, 2, 4, 8, 16, 32)),
        ("IVF-Flat, L2", dict(kind="ivf", nlist=nlist, reduce_mips=True), "nprobe", (1, 2, 4, 8, 16)),
        ("IVF-PQ, IP", dict(kind="ivfpq", nlist=nlist, m=16), "nprobe", (2, 4, 8, 16, 32)),
        ("IVF-PQ + re-rank, IP", dict(kind="ivfpq", nlist=nlist, m=16, nprobe=16, refine=1), "refine", (1, 4, 16, 64)),
        ("IVF-PQ fast-scan + re-rank, IP", dict(kind=f"IVF{nlist},PQ32x4fs,RFlat", nprobe=16), "refine", (1, 4, 16, 64)),
        ("PQ, IP", dict(kind="pq", m=16), None, (None,)),
        ("HNSW, IP", dict(kind="hnsw", M=16, ef_construction=40), "ef_search", (16, 32, 64, 128, 256, 512)),
        ("HNSW, L2", dict(kind="hnsw", M=16, ef_construction=40, reduce_mips=True), "ef_search", (16, 64, 256)),
        ("LSH, L2", dict(kind="lsh", nbits=256, reduce_mips=True, refine=1), "refine", (1, 10, 100)),
    ]
    if quick:  # the fast-to-build families only
        specs = [spec for spec in specs if spec[0] in ("IVF-Flat, IP", "IVF-Flat, L2", "HNSW, IP", "LSH, L2")]
    return specs


def run(n_items: int, dim: int, n_queries: int, k: int, threads: int, quick: bool, repeat: int = 3,
        random_state: int = 0) -> pd.DataFrame:
    faiss.omp_set_num_threads(threads)
    queries, catalogue, _ = synthetic_factors(n_queries, n_items, dim, random_state=random_state)
    exact = build_index(catalogue, "flat")
    exact_result = measure_search(exact, queries, k, repeat=repeat)
    truth = exact_result["ids"]
    exact_result["recall"] = 1.0
    columns = ("qps", "ms_per_query", "recall", "bytes_per_vector", "build_s")
    rows = [dict(index="Flat (exact)", knob="", value="", **{c: exact_result[c] for c in columns})]
    for name, spec, knob, values in tqdm(index_specs(n_items, quick), desc="index families", file=sys.stderr):
        index = build_index(catalogue, **spec)
        for value in values:
            if knob is not None:
                index.set_params(**{knob: value})
            result = measure_search(index, queries, k, exact_ids=truth, repeat=repeat)
            rows.append(dict(index=name, knob=knob or "", value="" if value is None else value,
                             **{c: result[c] for c in columns}))
    table = pd.DataFrame(rows)
    table["speed-up"] = table["qps"] / exact_result["qps"]
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="catalogue size (default 1,000,000)")
    parser.add_argument("--dim", type=int, default=64, help="vector dimension (default 64)")
    parser.add_argument("--queries", type=int, default=1_000, help="user queries (default 1,000)")
    parser.add_argument("-k", type=int, default=10, help="neighbours per query (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="faiss threads for every timing (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per search, the fastest counts (default 3)")
    parser.add_argument("--quick", action="store_true", help="skip the slow-to-build families")
    parser.add_argument("--csv", help="also write the table to this CSV file")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    table = run(args.items, args.dim, args.queries, args.k, args.threads, args.quick, args.repeat)
    print(f"recall@{args.k} vs queries/s: {args.items:,} items x {args.dim} dims, {args.queries:,} queries, "
          f"faiss {faiss.__version__} on {args.threads} threads, best of {args.repeat} runs "
          f"(exact and approximate timed in this run)\n")
    shown = table.rename(columns={"recall": f"recall@{args.k}", "bytes_per_vector": "bytes/vector", "build_s": "build s"})
    shown = shown.drop(columns=["ms_per_query"])
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(shown.to_string(index=False, float_format=lambda x: f"{x:,.3f}" if x < 10 else f"{x:,.0f}"))
    good = table[(table["recall"] >= 0.95) & (table["index"] != "Flat (exact)")]
    if len(good):
        best = good.loc[good["qps"].idxmax()]
        print(f"\nfastest at recall@{args.k} >= 0.95: {best['index']} ({best['knob']}={best['value']}), "
              f"{best['recall']:.3f} at {best['qps']:,.0f} queries/s = {best['speed-up']:.0f}x exact search")
    print(f"total time {time.perf_counter() - started:.0f} s")
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
