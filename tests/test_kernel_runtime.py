"""Helpers copied into every kernel (lstmsym/kernel_runtime.py), on their own."""
from __future__ import annotations

import numpy as np
import pytest

from lstmsym.codegen import load_kernel
from lstmsym.kernel_runtime import transposed


@pytest.mark.parametrize("shape", [(1, 1), (3, 64), (64, 3), (65, 7), (200, 33), (512, 128)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transposed_is_the_transpose_in_memory_order(shape, dtype):
    w = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    t = transposed(w)
    assert t.flags["C_CONTIGUOUS"] and t.dtype == dtype
    assert np.array_equal(t, w.T)


def test_a_kernel_with_more_than_one_block_of_rows_matches_float64_differences():
    """H = 20: the stacked recurrent matrix has 80 rows, two blocks of the transposed copy."""
    kernel = load_kernel("lstm")
    T, B, I, H = 3, 2, 5, 20
    params = kernel.init_params(I, H, seed=4)
    rng = np.random.default_rng(4)
    x, dh = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H))
    out, cache = kernel.forward(params, x)
    d_params, _, _ = kernel.backward(params, cache, {"h": dh})
    v = rng.standard_normal((H, H))
    eps = 1e-6

    def loss(W):
        o, _ = kernel.forward({**params, "W_hf": W}, x)
        return float(np.sum(o["h"] * dh))

    numeric = (loss(params["W_hf"] + eps * v) - loss(params["W_hf"] - eps * v)) / (2 * eps)
    assert numeric == pytest.approx(float(np.sum(d_params["W_hf"] * v)), rel=1e-7)
