"""One-step state Jacobians: the CEC from the derivation, checked against SymPy's scalar diff.

The claims (issue 3, item 4): for ``lstm1997`` ds_c(t)/ds_c(t-1) = I (the constant error
carousel), for ``lstm`` dC_t/dC_{t-1} = diag(f_t). They are read off the derivation
(lstmsym.jacobian, no unrolling, no diff) and compared with the Jacobian SymPy computes by
differentiating the instantiated forward step entry by entry, at H = 2 and 3.
"""
import random

import numpy as np
import pytest
import sympy

from lstmsym.cells import cell_names, get_cell
from lstmsym.errors import LstmsymError
from lstmsym.expr import Ones, Zero
from lstmsym.jacobian import diagonal, jacobian_latex, jacobian_matrix, vjp
from lstmsym.verification.scalar import ScalarEnv, forward_step, instantiate


def sizes_for(cell, H):
    sizes = {"I": 2, "H": H}
    for name, (base, k) in cell.dims.items():
        sizes = {**sizes, "H": H * k, name: H}
    return sizes


def scalar_jacobian(cell, of, wrt, sizes):
    """dS_t/dR_{t-1} by SymPy's diff of the instantiated forward step (independent of derive)."""
    env = ScalarEnv(sizes)
    out = forward_step(cell, env)
    S = out[cell.state(of)]
    R = env.leaf(cell.state(wrt).prev)
    return S.jacobian(R), env


# ----- the CEC, proven from the derivation ----------------------------------------------------------
def test_cec_of_lstm1997_is_the_identity_from_the_derivation():
    cell = get_cell("lstm1997")
    u, e = vjp(cell, "C", "C")
    assert e == u                                   # J^T u = u, i.e. J = I
    assert diagonal(cell, "C", "C") == Ones(("H",))
    assert diagonal("lstm1997-blocks", "C", "C") == Ones(("H",))


def test_cec_of_the_forget_gate_lstm_is_f_t_from_the_derivation():
    cell = get_cell("lstm")
    f_t = cell.equation("f").target
    assert diagonal(cell, "C", "C") == f_t
    assert vjp(cell, "C", "C")[1] == u_times(cell, f_t)


def u_times(cell, v):
    u, _ = vjp(cell, "C", "C")
    return u * v


@pytest.mark.parametrize("H", [2, 3])
def test_lstm1997_cec_against_sympy_diff(H):
    cell = get_cell("lstm1997")
    J, _ = scalar_jacobian(cell, "C", "C", sizes_for(cell, H))
    assert J == sympy.eye(H)


@pytest.mark.parametrize("H", [2, 3])
def test_lstm1997_blocks_cec_against_sympy_diff(H):
    cell = get_cell("lstm1997-blocks")
    sizes = sizes_for(cell, H)
    J, _ = scalar_jacobian(cell, "C", "C", sizes)
    assert J == sympy.eye(sizes["H"])


@pytest.mark.parametrize("H", [2, 3])
def test_lstm_cec_against_sympy_diff(H):
    cell = get_cell("lstm")
    J, env = scalar_jacobian(cell, "C", "C", sizes_for(cell, H))
    D = instantiate(diagonal(cell, "C", "C"), env)          # f_t as forward_step computed it
    assert (J - sympy.diag(*D)).applyfunc(sympy.expand) == sympy.zeros(H, H)
    off = [J[i, j] for i in range(H) for j in range(H) if i != j]
    assert off and all(sympy.expand(v) == 0 for v in off)


def test_peephole_cec_is_not_just_f():
    # with peepholes, C_{t-1} also enters the gates: dC_t/dC_{t-1} = diag(f + ...)
    D = diagonal("peephole-lstm", "C", "C")
    assert D != get_cell("peephole-lstm").equation("f").target
    # 1997 truncation keeps only the carousel: the peephole paths go through net inputs
    assert diagonal("peephole-lstm", "C", "C", truncation="1997") == \
        get_cell("peephole-lstm").equation("f").target


def test_truncated_lstm_has_no_path_through_h_prev():
    assert isinstance(vjp("lstm", "h", "h", truncation="1997")[1], Zero)
    assert isinstance(vjp("lstm1997", "C", "h", truncation="1997")[1], Zero)


# ----- every cell, every pair of states: J^T u against SymPy's diff ---------------------------------
def _point_env(cell, sizes, rng, keep):
    """An env with exact rational values for every leaf except the previous state ``keep``."""
    env = ScalarEnv(sizes)
    leaves = [*cell.params, *cell.inputs, *(s.prev for s in cell.states)]
    for leaf in leaves:
        m = env.leaf(leaf)
        if leaf == cell.state(keep).prev:
            continue
        env.values[leaf] = m.applyfunc(
            lambda _: sympy.Rational(rng.randint(-9, 9), rng.randint(2, 7)))
    return env


def _check_vjp(name, H, rng):
    """J^T u from the derivation == (SymPy's jacobian of the forward step)^T u, exactly.

    All leaves but R_{t-1} are random rationals, so both sides are polynomials in the same
    atoms (sigma(3/7), tanh(...)); R_{t-1} stays symbolic for SymPy to differentiate, then takes
    a rational value too.
    """
    cell = get_cell(name)
    sizes = sizes_for(cell, H)
    for R in cell.states:
        env = _point_env(cell, sizes, rng, R.name)
        r_syms = env.leaf(R.prev)
        out = forward_step(cell, env)
        r_val = {s: sympy.Rational(rng.randint(-9, 9), rng.randint(2, 7)) for s in r_syms}
        for S in cell.states:
            J = out[S].jacobian(r_syms)
            u, e = vjp(cell, S.name, R.name)
            env.values[u] = sympy.Matrix([sympy.Rational(rng.randint(-9, 9), 4)
                                          for _ in range(J.rows)])
            diff = (instantiate(e, env) - J.T * env.values[u]).subs(r_val)
            diff = diff.applyfunc(sympy.expand)
            assert diff == sympy.zeros(*diff.shape), f"{name}: d{S.name}/d{R.name}_prev"


@pytest.mark.parametrize("name", cell_names())
def test_vjp_equals_sympy_jacobian_transpose_times_u(name):
    _check_vjp(name, 2, random.Random(0))


@pytest.mark.slow
@pytest.mark.parametrize("name", cell_names())
def test_vjp_equals_sympy_jacobian_transpose_times_u_at_h3(name):
    _check_vjp(name, 3, random.Random(1))


# ----- LaTeX ------------------------------------------------------------------------------------------
def test_jacobian_latex_states_the_cec():
    text = jacobian_latex("lstm1997")
    assert r"\frac{\partial s_c(t)}{\partial s_c(t-1)} &= I" in text
    assert text.count(r" \\") == 3                     # four pairs of states
    assert r"\frac{\partial C_{t}}{\partial C_{t-1}} &= \operatorname{diag}\left(f_{t}\right)" \
        in jacobian_latex("lstm")
    wrapped = jacobian_latex("elman-tanh", environment=True)
    assert wrapped.startswith("\\begin{align*}") and r"\left(\frac{\partial h_{t}}" in wrapped


# ----- numbers ----------------------------------------------------------------------------------------
def _random_values(cell, sizes, seed=0):
    rng = np.random.default_rng(seed)
    vals = {p.name: rng.standard_normal(tuple(sizes[d] for d in p.shape)) for p in cell.params}
    vals.update({x.name: rng.standard_normal(sizes[x.shape[0]]) for x in cell.inputs})
    vals.update({s.name + "_prev": rng.standard_normal(sizes[s.shape[0]]) for s in cell.states})
    return vals


@pytest.mark.parametrize("name,of,wrt", [("lstm", "h", "h"), ("lstm", "h", "C"),
                                         ("peephole-lstm-full", "C", "C"),
                                         ("lstm1997-blocks", "h", "h"), ("gru-torch", "h", "h")])
def test_jacobian_matrix_against_sympy_diff_at_numbers(name, of, wrt):
    cell = get_cell(name)
    sizes = sizes_for(cell, 2)
    vals = _random_values(cell, sizes)
    ours = jacobian_matrix(cell, of, wrt, vals, {"H": sizes["H"], "I": sizes["I"]})
    # reference: SymPy's diff of the forward step, R_{t-1} symbolic, everything else numbers
    env = ScalarEnv(sizes)
    leaves = {p: vals[p.name] for p in cell.params}
    leaves.update({x: vals[x.name] for x in cell.inputs})
    leaves.update({s.prev: vals[s.name + "_prev"] for s in cell.states})
    R = cell.state(wrt).prev
    for leaf, arr in leaves.items():
        if leaf != R:
            arr = np.asarray(arr, dtype=float)
            env.values[leaf] = sympy.Matrix(arr.reshape(arr.shape[0], -1).tolist())
    r_syms = env.leaf(R)
    J = forward_step(cell, env)[cell.state(of)].jacobian(r_syms)
    ref = np.array(J.subs(dict(zip(r_syms, vals[wrt + "_prev"]))).evalf().tolist(), dtype=float)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_jacobian_matrix_of_lstm1997_cec_is_the_identity():
    cell = get_cell("lstm1997")
    sizes = {"H": 3, "I": 2}
    ours = jacobian_matrix(cell, "C", "C", _random_values(cell, sizes), sizes)
    assert np.array_equal(ours, np.eye(3))


def test_jacobian_errors_are_clear():
    with pytest.raises(LstmsymError, match="has no state 'C'; its states are: h"):
        vjp("gru", "C", "h")
    cell = get_cell("lstm")
    vals = _random_values(cell, {"H": 2, "I": 2})
    del vals["W_xf"]
    with pytest.raises(LstmsymError, match="no value for W_xf"):
        jacobian_matrix(cell, "C", "C", vals, {"H": 2, "I": 2})


def test_docstring_examples_run():
    import doctest

    import lstmsym.jacobian
    result = doctest.testmod(lstmsym.jacobian)
    assert result.attempted > 0 and result.failed == 0
