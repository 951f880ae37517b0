"""The book's own machinery, not part of the library: the results table, the run times and the README sections.

Used by ``python -m recsys_lab benchmark | timings | report``; a reader's project never needs it."""
