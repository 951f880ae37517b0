"""The settings each chapter chose on the validation targets, in one home.

Chapters and the results table read a model's settings from here with
:func:`chosen`, so no chapter types a value another chapter chose. A chapter
that tunes ends with :func:`check_choice`, which fails when its fresh choice
differs from the stored one: a stale entry breaks CI instead of silently
disagreeing with the text. The values live in ``chosen_settings.json``
beside this module (a tuner writes them there), each with the chapter that
chose it and how.

>>> chosen("ials")
{'factors': 32, 'regularization': 10.0, 'alpha': 1.0, 'iterations': 15}
"""

from __future__ import annotations

import copy
import json
import math
from functools import lru_cache
from pathlib import Path

__all__ = ["chosen", "check_choice", "chosen_entry", "SETTINGS_PATH"]

SETTINGS_PATH = Path(__file__).with_name("chosen_settings.json")


@lru_cache(maxsize=1)
def _entries() -> dict:
    with open(SETTINGS_PATH, encoding="utf-8") as file:
        return json.load(file)


def chosen_entry(name: str) -> dict:
    """The whole stored entry: ``params``, ``chapter``, ``chosen_by`` (and a tuner's extras)."""
    entries = _entries()
    if name not in entries:
        raise KeyError(f"no chosen settings for {name!r}; known: {sorted(entries)}.")
    return copy.deepcopy(entries[name])


def chosen(name: str) -> dict:
    """The chosen hyperparameters of model ``name`` as keyword arguments (a fresh copy)."""
    return chosen_entry(name)["params"]


def check_choice(name: str, found: dict) -> None:
    """Raise ``ValueError`` unless ``found`` (a chapter's fresh choice) matches the stored settings.

    Only the keys in ``found`` are compared; floats within a relative 1e-9.
    """
    stored = chosen(name)
    differs = {key: (value, stored.get(key)) for key, value in found.items() if not _same(value, stored.get(key))}
    if differs:
        detail = ", ".join(f"{key}: chose {new!r}, stored {old!r}" for key, (new, old) in differs.items())
        raise ValueError(f"the choice for {name!r} differs from {SETTINGS_PATH.name} ({detail}); "
                         f"update the file so every chapter and the results table use the same settings.")


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9)
    return a == b
