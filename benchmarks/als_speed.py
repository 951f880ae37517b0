"""Time per iALS iteration: recsys_lab's ImplicitALS against the `implicit` library.

Both fit the same confidence matrix (1 + alpha * r) with the same factors,
regularization, CG steps and number of iterations, in the same process,
alternating runs so background load hits both alike. `implicit` runs as its
documentation asks: its own threads on every core, with the BLAS thread
pool limited to one thread (threadpoolctl), since a second pool underneath
its threads oversubscribes the CPU; it warns when that is not done.

    .venv/bin/python benchmarks/als_speed.py                 # ML-100K + 100k x 20k synthetic
    .venv/bin/python benchmarks/als_speed.py --repeats 5 --users 200000

Not a unit test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from recsys_lab.data import leave_last_out, load_movielens_100k, synthetic_user_items
from recsys_lab.models.als import ImplicitALS, confidence_matrix


def seconds_per_iteration(fit, iterations: int) -> float:
    started = time.perf_counter()
    fit()
    return (time.perf_counter() - started) / iterations


def compare(user_items, *, factors: int, regularization: float, alpha: float, iterations: int, repeats: int) -> dict:
    """Median seconds per iteration of both implementations over ``repeats`` alternating runs."""
    from implicit.cpu.als import AlternatingLeastSquares

    confidence = confidence_matrix(user_items, alpha)      # implicit's own alpha stays 1
    ours, theirs = [], []
    for repeat in range(repeats):
        model = ImplicitALS(factors, regularization=regularization, alpha=alpha, iterations=iterations, random_state=repeat)
        ours.append(seconds_per_iteration(lambda: model.fit(user_items, show_progress=False), iterations))
        with threadpool_limits(1, "blas"):     # implicit checks the BLAS threads when it is built
            library = AlternatingLeastSquares(factors, regularization=regularization, alpha=1.0,
                                              iterations=iterations, num_threads=0, random_state=repeat)
            theirs.append(seconds_per_iteration(lambda: library.fit(confidence, show_progress=False), iterations))
    ours_s, theirs_s = float(np.median(ours)), float(np.median(theirs))
    return {"ours s/it": ours_s, "implicit s/it": theirs_s, "ratio": ours_s / theirs_s}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--regularization", type=float, default=0.1)
    parser.add_argument("--alpha", type=float, default=2.0)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args(argv)

    datasets = {"ML-100K train": leave_last_out(load_movielens_100k().interactions).train.user_items}
    if not args.skip_synthetic:
        datasets[f"synthetic {args.users:,} x {args.items:,}"] = synthetic_user_items(args.users, args.items, random_state=0)
    settings = dict(factors=args.factors, regularization=args.regularization, alpha=args.alpha,
                    iterations=args.iterations, repeats=args.repeats)
    print(f"settings: {settings}")
    print(f"{'dataset':<32}{'nnz':>12}{'ours s/it':>12}{'implicit s/it':>15}{'ratio':>8}")
    for name, user_items in datasets.items():
        row = compare(user_items, **settings)
        print(f"{name:<32}{user_items.nnz:>12,}{row['ours s/it']:>12.3f}{row['implicit s/it']:>15.3f}{row['ratio']:>8.2f}")


if __name__ == "__main__":
    main()
