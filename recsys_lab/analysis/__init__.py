"""Using learned vectors: similarity measures, neighbours and segments, multi-interest users, drift between versions.

Import by module (``from recsys_lab.analysis import similarity``); nothing heavy is imported here."""
