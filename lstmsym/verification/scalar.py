"""Vector expressions at a small size, as SymPy matrices of scalar expressions.

This is the bridge from lstmsym's vector-level trees to SymPy's scalar world: pick sizes for
the dimensions (H = 2, I = 2, ...), give every leaf a matrix of scalar symbols (or numbers), and
``instantiate`` evaluates a tree to a SymPy column vector or matrix. The proof (symbolic.py) and
the judge of user formulas (judge.py) both stand on it.

>>> from lstmsym.expr import Sym
>>> from lstmsym.ops import sigmoid
>>> W = Sym("W", "param", ("H", "I")); x = Sym("x", "input", ("I",))
>>> env = ScalarEnv({"H": 2, "I": 1})
>>> instantiate(sigmoid(W @ x), env).T
Matrix([[Sigmoid(W_0_0*x_t_0), Sigmoid(W_1_0*x_t_0)]])
"""
from __future__ import annotations

import sympy

from lstmsym.errors import LstmsymError
from lstmsym.expr import (Act, ActDeriv, Add, BlockSum, Grad, Had, MatVec, Ones, OutGrad, Outer,
                          Repeat, Scale, Sym, Transpose, Zero)

_TIME = {-1: "tm1", 0: "t", 1: "tp1", 2: "tp2", -2: "tm2"}


class ScalarEnv:
    """Sizes for the dimension names and a matrix of scalars for each leaf.

    Leaves without an assigned value get fresh real symbols named after the leaf, e.g. ``W_xf``
    entries ``W_xf_0_1`` and ``C[t-1]`` entries ``C_tm1_0``. ``values`` maps leaf keys (Sym,
    Grad, OutGrad) to SymPy matrices.
    """

    def __init__(self, sizes: dict, values: dict | None = None, prefix: str = ""):
        self.sizes = dict(sizes)
        self.values = dict(values or {})
        self.prefix = prefix

    def size(self, dim) -> int:
        if isinstance(dim, int):
            return dim
        try:
            return self.sizes[dim]
        except KeyError:
            raise LstmsymError(f"no size given for dimension {dim!r}") from None

    def leaf(self, key) -> sympy.Matrix:
        if key not in self.values:
            self.values[key] = self.fresh(key)
        return self.values[key]

    def fresh(self, key) -> sympy.Matrix:
        name = self.prefix + leaf_label(key)
        rows = self.size(key.shape[0])
        if len(key.shape) == 2:
            cols = self.size(key.shape[1])
            return sympy.Matrix(rows, cols,
                                lambda i, j: sympy.Symbol(f"{name}_{i}_{j}", real=True))
        return sympy.Matrix(rows, 1, lambda i, j: sympy.Symbol(f"{name}_{i}", real=True))


def block_sizes(cell, sizes: dict, blocks: int = 2) -> dict:
    """``sizes`` with the memory-cell block dimensions of ``cell`` filled in: each base size
    (H) raised to at least ``blocks`` blocks of k cells and to a multiple of k, and the block
    dimension (G) set to base / k. Cells without blocks get ``sizes`` back unchanged."""
    sizes = dict(sizes)
    for dim, (base, k) in cell.dims.items():
        n = max(sizes[base], blocks * k)
        sizes[base] = -(-n // k) * k
        sizes[dim] = sizes[base] // k
    return sizes


def leaf_label(key) -> str:
    if isinstance(key, Grad):
        return "d" + leaf_label(key.of)
    if isinstance(key, OutGrad):
        return "dout" + leaf_label(key.of)
    if key.role in ("param", "const"):
        return key.name
    return f"{key.name}_{_TIME.get(key.time, key.time)}"


def instantiate(expr, env: ScalarEnv) -> sympy.Matrix:
    """Evaluate a vector-level tree to a SymPy matrix in ``env``."""
    if isinstance(expr, (Sym, Grad, OutGrad)):
        return env.leaf(expr)
    if isinstance(expr, Ones):
        return sympy.ones(env.size(expr.shape[0]), 1)
    if isinstance(expr, Zero):
        if len(expr.shape) == 2:
            return sympy.zeros(env.size(expr.shape[0]), env.size(expr.shape[1]))
        return sympy.zeros(env.size(expr.shape[0]), 1)
    if isinstance(expr, Add):
        out = instantiate(expr.args[0], env)
        for a in expr.args[1:]:
            out = out + instantiate(a, env)
        return out
    if isinstance(expr, Scale):
        return sympy.Rational(expr.coeff.numerator, expr.coeff.denominator) * \
            instantiate(expr.arg, env)
    if isinstance(expr, Had):
        out = instantiate(expr.args[0], env)
        for a in expr.args[1:]:
            out = out.multiply_elementwise(instantiate(a, env))
        return out
    if isinstance(expr, MatVec):
        m = instantiate(expr.mat, env)
        return (m.T if expr.transpose else m) * instantiate(expr.vec, env)
    if isinstance(expr, Transpose):
        return instantiate(expr.arg, env).T
    if isinstance(expr, Outer):
        return instantiate(expr.left, env) * instantiate(expr.right, env).T
    if isinstance(expr, Act):
        return instantiate(expr.arg, env).applyfunc(expr.fn.scalar)
    if isinstance(expr, ActDeriv):
        return instantiate(expr.arg, env).applyfunc(expr.fn.deriv)
    if isinstance(expr, Repeat):
        v = instantiate(expr.arg, env)
        return sympy.Matrix([v[i // expr.k] for i in range(v.rows * expr.k)])
    if isinstance(expr, BlockSum):
        v = instantiate(expr.arg, env)
        return sympy.Matrix([sum(v[i * expr.k:(i + 1) * expr.k], sympy.Integer(0))
                             for i in range(v.rows // expr.k)])
    raise LstmsymError(f"cannot instantiate {type(expr).__name__} node {expr!r}")


def forward_step(cell, env: ScalarEnv, time: int = 0) -> dict:
    """Run the equations of ``cell`` at step ``t + time`` in ``env``; store and return targets.

    Inputs, previous states and parameters come from ``env`` (fresh symbols if unset), so a
    two-step graph is ``forward_step(cell, env, 0)`` then ``forward_step(cell, env, 1)``.
    """
    from lstmsym.expr import shift
    out = {}
    for eq in cell.equations:
        value = instantiate(shift(eq.expr, time), env)
        key = eq.target.at(time)
        env.values[key] = value
        out[key] = value
    return out
