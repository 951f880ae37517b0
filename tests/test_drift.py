"""Quality gates between versions: what a rotation leaves alone, and vectors that cannot be compared."""

import numpy as np
import pytest

from recsys_lab.analysis.drift import metric_gate, neighbourhood_overlap, procrustes_align


@pytest.fixture
def space():
    rng = np.random.default_rng(0)
    return rng.normal(size=(60, 8)), np.linalg.qr(rng.normal(size=(8, 8)))[0]


def test_a_rotation_is_no_drift(space):
    x, rotation = space
    assert neighbourhood_overlap(x, x @ rotation, k=5).min() == 1.0
    result = procrustes_align(x, x @ rotation)
    assert result.residual < 1e-10 and result.unaligned > 0.5
    np.testing.assert_allclose(result.rotation, rotation, atol=1e-8)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("which", ["a", "b"])
def test_a_nan_row_is_named(space, bad, which):
    x, rotation = space
    a, b = x.copy(), x @ rotation
    (a if which == "a" else b)[7, 2] = bad
    for compare in (lambda: neighbourhood_overlap(a, b, k=5), lambda: procrustes_align(a, b)):
        with pytest.raises(ValueError, match=f"{which} has NaN or infinite values in 1 row\\(s\\), first row 7"):
            compare()


def test_metric_gate():
    assert metric_gate(0.101, 0.105, max_drop=0.01) and not metric_gate(0.09, 0.105, max_drop=0.01)
    with pytest.raises(ValueError, match="new=nan"):
        metric_gate(float("nan"), 0.1)
