"""The generated kernels' gradients against central differences, in float64, for every cell.

Hypothesis draws the sequence length, batch, sizes, magnitudes and the backward mode (full,
truncated k or (k1, k2), the 1997 truncation). The reference (lstmsym.verification.numeric)
interprets the cell's equations independently of the kernel; each truncated mode is a loss in
which the cut quantities are held constant (module docstring there). A wrong backward rule is
caught.
"""
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstmsym import rules
from lstmsym.cells import cell_names, get_cell
from lstmsym.codegen import load_kernel
from lstmsym.expr import Had, had
from lstmsym.verification.numeric import check_gradients, gradcheck

CELLS = cell_names()
TOLERANCE = 1e-5


@lru_cache(maxsize=None)
def kernel(name):
    return load_kernel(name)


@st.composite
def cases(draw):
    T = draw(st.integers(1, 8))
    mode = draw(st.sampled_from(["full", "k", "k1k2", "1997"]))
    truncate = {"full": None, "1997": "1997"}.get(mode)
    if mode == "k":
        truncate = draw(st.integers(1, T))
    elif mode == "k1k2":
        truncate = (draw(st.integers(1, T)), draw(st.integers(1, T + 2)))
    return dict(T=T, B=draw(st.integers(1, 3)), I=draw(st.integers(1, 4)),
                H=draw(st.integers(1, 5)), truncate=truncate,
                magnitude=draw(st.sampled_from([0.1, 0.5, 1.0, 2.0, 3.0])),
                seed=draw(st.integers(0, 2**16)))


@pytest.mark.parametrize("name", CELLS)
@given(case=cases())
def test_kernel_gradients_match_finite_differences(name, case):
    factor = max([f for _, f in get_cell(name).dims.values()] or [1])
    H = -(-case["H"] // factor) * factor
    with np.errstate(all="raise"):
        errors = check_gradients(name, kernel(name), case["T"], case["B"], case["I"], H,
                                 case["truncate"], case["seed"], case["magnitude"])
    assert errors.pop("forward") < 1e-9
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, (worst, errors[worst], case)


def test_gradcheck_verdicts():
    verdicts = gradcheck("peephole-lstm")
    assert len(verdicts) >= 10
    assert all(v.ok and v.method == "finite-differences" for v in verdicts), \
        [v.line() for v in verdicts if not v.ok]


def test_a_wrong_rule_is_caught(monkeypatch):
    """Drop one term of the Hadamard rule: the kernel's gradients must fail the check."""
    def wrong_had(y, g):
        return [(a, had(g, *(b for j, b in enumerate(y.args) if j != i)))
                for i, a in enumerate(y.args)][:1]
    monkeypatch.setitem(rules.RULES, Had, wrong_had)
    verdicts = gradcheck("lstm", configs=((3, 2, 2, 3),), truncations=(None,),
                         kernel=load_kernel("lstm"))
    assert not any(v.ok for v in verdicts)
    monkeypatch.undo()
    assert all(v.ok for v in gradcheck("lstm", configs=((3, 2, 2, 3),), truncations=(None,),
                                       kernel=load_kernel("lstm")))
