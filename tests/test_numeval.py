"""lstmsym.numeval against SymPy: the shared NumPy evaluator on both batch layouts.

Every tree a registered cell has (its forward equations and every derived backward expression)
is evaluated by ``BatchLast`` (vectors (n, B)) and ``BatchFirst`` (vectors (B, n), parameter
vectors (n,)) and compared, sample by sample, with lstmsym.verification.scalar's SymPy matrices
of the same tree evaluated by mpmath. Matrix-shaped trees (parameter gradients, u v^T) are sums
over the batch, so they are compared with the sum of the per-sample SymPy values. The activation
table is compared with SymPy's own ``diff`` of each activation rewritten into elementary
functions (so not with the ``fdiff`` rules numeval reads), at points out to |z| = 700.
"""
import numpy as np
import pytest
import sympy

from lstmsym.analysis.evaluate import dimension_sizes
from lstmsym.cells import cell_names, get_cell
from lstmsym.derive import derive
from lstmsym.errors import LstmsymError
from lstmsym.expr import Grad, OutGrad, Sym
from lstmsym.numeval import (FUNCTIONS, IDENTITY, BatchFirst, BatchLast, activation_functions,
                             evaluate, stable_sigmoid)
from lstmsym.ops import Activation, g1997, h1997, relu, sigmoid, tanh
from lstmsym.verification.scalar import ScalarEnv, instantiate

B = 3


def _trees(cell):
    d = derive(cell)
    trees = [eq.expr for eq in cell.equations]
    trees += [d.grad(v) for v in d.order]
    trees += [d.carry_expr(s.name) for s in cell.states]
    trees += [d.param_grad(p.name) for p in cell.params]
    trees += [d.input_grad(x.name) for x in cell.inputs]
    return trees


def _size(dim, sizes):
    return dim if isinstance(dim, int) else sizes[dim]


def _batch_values(trees, sizes, rng):
    """leaf -> batch-first array: (B, n) for vectors, (n,) for parameter vectors, (n, m)."""
    leaves = {n for t in trees for n in t.walk() if isinstance(n, (Sym, Grad, OutGrad))}
    out = {}
    for leaf in sorted(leaves, key=repr):
        shape = tuple(_size(d, sizes) for d in leaf.shape)
        batched = len(shape) == 1 and not (isinstance(leaf, Sym) and leaf.role == "param")
        out[leaf] = rng.normal(0.0, 1.0, ((B,) + shape) if batched else shape)
    return out


def _sympy_sample(tree, values, sizes, b):
    """The tree by SymPy at sample b, as a float array (column vectors flattened)."""
    env = ScalarEnv(sizes, {leaf: sympy.Matrix(v[b] if v.ndim == 2 and len(leaf.shape) == 1
                                               else v.reshape(v.shape[0], -1))
                            for leaf, v in values.items()})
    m = instantiate(tree, env).evalf(30)
    return np.array(m.tolist(), dtype=float).reshape(m.shape if m.cols > 1 else (m.rows,))


@pytest.mark.parametrize("name", cell_names())
def test_both_layouts_match_sympy_on_every_tree_of_a_cell(name):
    cell = get_cell(name)
    sizes = dimension_sizes(cell, 4, 2)
    trees = _trees(cell)
    first = _batch_values(trees, sizes, np.random.default_rng(7))
    last = {leaf: (v.T if v.ndim == 2 and len(leaf.shape) == 1 else
                   v.reshape(-1, 1) if v.ndim == 1 else v) for leaf, v in first.items()}
    for tree in trees:
        samples = [_sympy_sample(tree, first, sizes, b) for b in range(B)]
        got_last, got_first = BatchLast(last)(tree), BatchFirst(first)(tree)
        if len(tree.shape) == 2:          # u v^T summed over the batch
            want = sum(samples)
            np.testing.assert_allclose(got_last, want, rtol=1e-12, atol=1e-12, err_msg=repr(tree))
            np.testing.assert_allclose(got_first, want, rtol=1e-12, atol=1e-12,
                                       err_msg=repr(tree))
            continue
        want = np.stack(samples)          # (B, n)
        np.testing.assert_allclose(np.broadcast_to(got_first, want.shape), want, rtol=1e-12,
                                   atol=1e-12, err_msg=repr(tree))
        np.testing.assert_allclose(np.broadcast_to(got_last, want.T.shape), want.T, rtol=1e-12,
                                   atol=1e-12, err_msg=repr(tree))


SOFTSIGN = Activation("softsign_numeval_test", "s", lambda z: z / (1 + sympy.Abs(z)))
ACTS = (sigmoid, tanh, relu, g1997, h1997, IDENTITY, SOFTSIGN)
POINTS = (-700.0, -40.0, -7.5, -1.3, -0.2, 0.3, 1.1, 6.0, 35.0, 700.0)


@pytest.mark.parametrize("act", ACTS, ids=lambda a: a.name)
def test_activation_and_derivative_match_sympy_diff_of_the_rewritten_function(act):
    z = sympy.Symbol("z", real=True)
    elementary = act.scalar(z).rewrite(sympy.exp).rewrite(sympy.Max)
    slope = sympy.diff(elementary, z)
    f, fprime = activation_functions(act)
    for p in POINTS:
        at = {z: sympy.Float(p, 40)}
        want_f = float(elementary.evalf(40, subs=at))
        want_d = float(slope.evalf(40, subs=at))
        # 1 - tanh^2 and 4 sigma - 2 cancel: absolute accuracy is what a double gives there
        assert float(f(np.float64(p))) == pytest.approx(want_f, rel=1e-13, abs=1e-15), p
        assert float(fprime(np.float64(p))) == pytest.approx(want_d, rel=1e-12, abs=1e-15), p


def test_the_named_table_is_the_builtins_and_identity():
    assert set(FUNCTIONS) == {"sigmoid", "tanh", "relu", "g1997", "h1997", "identity"}
    assert FUNCTIONS["tanh"] is activation_functions(tanh)


def test_stable_sigmoid_is_relatively_accurate_far_out_and_never_warns():
    z = np.array([-745.0, -300.0, -40.0, 0.0, 40.0, 1e4, -1e4])
    with np.errstate(all="raise"):
        got = stable_sigmoid(z)
    want = [float((1 / (1 + sympy.exp(-sympy.Float(v, 30)))).evalf(30)) for v in z]
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0.0)


@pytest.mark.parametrize("act", ACTS, ids=lambda a: a.name)
def test_no_float_error_up_to_1e4_and_nan_propagates(act):
    f, fprime = activation_functions(act)
    z = np.array([-1e4, -800.0, -1.0, 0.0, 1.0, 800.0, 1e4])
    with np.errstate(all="raise"):
        assert np.all(np.isfinite(f(z))) and np.all(np.isfinite(fprime(z)))
        assert np.isnan(f(np.array([np.nan])))[0]
        if act is not IDENTITY:           # identity' is the constant 1
            assert np.isnan(fprime(np.array([np.nan])))[0]


def test_errors_name_the_problem():
    h = Sym("h", "state", ("H",), -1)
    with pytest.raises(LstmsymError, match=r"no value for h\[t-1\]"):
        BatchLast({})(tanh(h))
    with pytest.raises(LstmsymError, match="batch axis"):
        evaluate(h, {h: np.ones((2, 1))}, batch="middle")
    weird = Activation("floor_numeval_test", "fl", lambda z: sympy.floor(z))
    with pytest.raises(LstmsymError, match="cannot evaluate floor"):
        activation_functions(weird)
