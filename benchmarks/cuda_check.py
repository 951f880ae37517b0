"""Fit every torch model of the course on one device and report time and test metrics.

The chapters run on the CPU in CI; this script checks that the same models
train on ``cuda`` when a GPU is present (``pick_device`` chooses it), and how
long each takes there. Settings are the benchmark's (the chapters' tuned ones).

    .venv/bin/python benchmarks/cuda_check.py                 # cuda if present, else the CPU
    .venv/bin/python benchmarks/cuda_check.py --device cpu    # the same on the CPU, to compare

Not a unit test: times depend on the machine. GPU kernels are not bitwise
deterministic, so metrics may differ slightly from the CPU run.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import pandas as pd
import torch

from recsys_lab.course.benchmark import ENTRIES
from recsys_lab.data import leave_last_out, load_movielens_100k
from recsys_lab.evaluation import evaluate

TORCH_MODELS = ("History net (ids + text)", "Wide & deep", "Two-tower", "SASRec", "LightGCN", "Mult-VAE")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    args = parser.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else ""))

    movielens = load_movielens_100k()
    split = leave_last_out(movielens.interactions)
    rows = []
    for entry in (e for e in ENTRIES if e.name in TORCH_MODELS):
        try:
            model = entry.build(movielens)
        except ModuleNotFoundError as missing:  # e.g. the text encoder's package on a bare GPU box
            print(f"{entry.name}: skipped ({missing})")
            continue
        model.config = dataclasses.replace(model.config, device=device)
        extra = entry.fit_kwargs(movielens) if entry.fit_kwargs else {}
        started = time.perf_counter()
        history = split.history("test")          # the shared protocol: refit on train + validation, then test
        model.fit(history if model.needs_order else history.user_items, show_progress=False, **extra)
        seconds = time.perf_counter() - started
        row = evaluate(model, split, "test", name=entry.name)
        rows.append({"model": entry.name, "fit seconds": round(seconds, 1),
                     "NDCG@10": round(row["NDCG@10"].item(), 4), "HR@10": round(row["HR@10"].item(), 4)})
        print(rows[-1], flush=True)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
