"""Numbers from the vector-level trees: the one NumPy evaluator of lstmsym.expr.

The analyses (lstmsym.analysis.evaluate) and the gradient check's reference forward pass
(lstmsym.verification.numeric) both need a tree's value at numbers, on two layouts of a batch:

- ``BatchLast``: every vector is an (n, B) array, B columns evaluated at once. A Jacobian comes
  out of one backward pass this way: B basis cotangents side by side in the columns.
- ``BatchFirst``: every vector is a (..., n) array, the batch axes first, as kernels and PyTorch
  hold them; a parameter vector (a bias) may be a plain (n,) array.

Matrices are (rows, columns) in both. The layouts differ only in the four nodes that know which
axis is the vector's (``MatVec``, ``Outer``, ``Repeat``, ``BlockSum``); the rest is shared, and
so is the activation table. An activation is evaluated from its own SymPy expressions (f from
``scalar``, f' from ``deriv``) by a small interpreter, ``scalar_eval``, whose one table maps SymPy
function heads to NumPy; there is no lambdify and no hand-written copy of any derivative. This
module reads nothing of the generated kernels (codegen, kernel_build, kernel_runtime): the
gradient check compares those kernels against it.

>>> import numpy as np
>>> from lstmsym.expr import Sym
>>> from lstmsym.ops import tanh
>>> W = Sym("W", "param", ("H", "H")); h = Sym("h", "state", ("H",), -1)
>>> float(BatchLast({W: np.eye(1) * 2.0, h: np.ones((1, 1))})(tanh(W @ h))[0, 0])  # tanh(2)
0.9640275800758169
"""
from __future__ import annotations

import functools

import numpy as np
import sympy

from lstmsym.errors import LstmsymError
from lstmsym.ops import Activation, g1997, h1997, relu, sigmoid, tanh


# ----- NumPy for the SymPy function heads an activation may be built from ------------------------
def stable_sigmoid(z):
    """1/(1+e^{-z}) without overflow for any z (exp only ever sees -|z|); NaN stays NaN.

    >>> stable_sigmoid(np.array([-1e4, 0.0, 1e4])).tolist()
    [0.0, 0.5, 1.0]
    """
    z = np.asarray(z, dtype=float)
    with np.errstate(under="ignore"):   # e^{-|z|} below the smallest double is 0: exact enough
        e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))[()]


SYMPY_FUNCTIONS = {
    "Sigmoid": stable_sigmoid, "tanh": np.tanh, "exp": np.exp, "log": np.log,
    "ReLU": lambda z: np.maximum(z, 0.0), "Abs": np.abs,
    "Heaviside": np.heaviside,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "atan": np.arctan, "sinh": np.sinh,
    "cosh": np.cosh, "sqrt": np.sqrt, "sign": np.sign,
}


def scalar_eval(e, values: dict):
    """Evaluate a SymPy expression elementwise on arrays.

    Arguments:
        e: a SymPy expression built from numbers, the symbols in ``values``, +, *, **, Max and
            the heads in ``SYMPY_FUNCTIONS``.
        values: SymPy Symbol -> array or number.

    Returns:
        an array broadcast from the values' shapes, or a float for a constant expression.

    >>> z = sympy.Symbol("z")
    >>> scalar_eval(1 - sympy.tanh(z) ** 2, {z: np.array([0.0])}).tolist()
    [1.0]
    """
    return compile_scalar(e)(values)


_COMBINE = {sympy.Add: np.add, sympy.Mul: np.multiply, sympy.Max: np.maximum}


@functools.lru_cache(maxsize=None)
def compile_scalar(e):
    """``scalar_eval`` for one expression as a function of ``values``, the tree walked once.

    Raises LstmsymError (here, not at the call) for a head no NumPy function stands for.
    """
    if e.is_Symbol:
        def read(values):
            try:
                return values[e]
            except KeyError:
                raise LstmsymError(f"no value for the symbol {e} of an activation") from None
        return read
    if e.is_Number:
        c = float(e)
        return lambda values: c
    parts = [compile_scalar(a) for a in e.args]
    if e.func in _COMBINE:
        combine = _COMBINE[e.func]

        def fold(values):
            out = parts[0](values)
            for p in parts[1:]:
                out = combine(out, p(values))
            return out
        return fold
    if e.func is sympy.Pow:
        base, exponent = parts
        return lambda values: base(values) ** exponent(values)
    name = type(e).__name__
    if name not in SYMPY_FUNCTIONS:
        raise LstmsymError(f"cannot evaluate {name} numerically (an activation built from it)")
    fn = SYMPY_FUNCTIONS[name]
    return lambda values: fn(*(p(values) for p in parts))


# ----- activations: f and f' from the activation's own SymPy expressions ----------------------
_Z = sympy.Symbol("z", real=True)

# identity is no node in a tree (lstmsym.ops.identity returns its argument); the analyses'
# recursions still ask for it by name
IDENTITY = Activation("identity", r"\mathrm{id}", lambda z: z, description="z")

_COMPILED: dict = {}


def _elementwise(body):
    compiled = compile_scalar(body)

    def fn(a):
        out = compiled({_Z: a})
        if np.shape(out) != np.shape(a):    # a constant, e.g. the identity's derivative 1
            out = np.full(np.shape(a), out, dtype=float)[()]
        return out
    return fn


def activation_functions(act: Activation) -> tuple:
    """(f, f'): NumPy functions of one array for an ``lstmsym.ops.Activation``.

    >>> f, fprime = activation_functions(sigmoid)
    >>> float(f(0.0)), float(fprime(0.0))
    (0.5, 0.25)
    """
    # keyed by the functions, not the name: two activations may share a name, not a formula
    key = (act.scalar, act.deriv_input)
    if key not in _COMPILED:
        _COMPILED[key] = (_elementwise(act.scalar(_Z)), _elementwise(act.deriv(_Z)))
    return _COMPILED[key]


# activation name -> (f, f') for the built-in activations (user ones: activation_functions)
FUNCTIONS = {a.name: activation_functions(a)
             for a in (sigmoid, tanh, relu, IDENTITY, g1997, h1997)}


# ----- the evaluator ---------------------------------------------------------------------------
class Evaluator:
    """Evaluates a vector-level tree at the arrays in ``values``; one method per node type.

    ``values`` maps leaves to arrays: ``Sym`` and ``Grad`` nodes (a missing one is an error),
    ``OutGrad`` nodes (a missing one is zero). A subclass fixes the layout; to look leaves up
    by other keys, override ``leaf``.
    """

    def __init__(self, values: dict):
        self.values = values

    def __call__(self, e):
        method = getattr(self, "_eval_" + type(e).__name__, None)
        if method is None:
            raise LstmsymError(f"cannot evaluate {type(e).__name__} node {e!r}")
        return method(e)

    def leaf(self, e):
        try:
            return self.values[e]
        except KeyError:
            raise LstmsymError(f"no value for {e!r} while evaluating") from None

    # --- leaves ---------------------------------------------------------------------------------
    def _eval_Sym(self, e):
        return self.leaf(e)

    def _eval_Grad(self, e):
        return self.leaf(e)

    def _eval_OutGrad(self, e):
        return self.values.get(e, 0.0)

    def _eval_Ones(self, e):
        return 1.0

    def _eval_Zero(self, e):
        return 0.0

    # --- sums, products, activations: the same on every layout ---------------------------------
    def _eval_Add(self, e):
        out = self(e.args[0])
        for a in e.args[1:]:
            out = out + self(a)
        return out

    def _eval_Scale(self, e):
        return float(e.coeff) * self(e.arg)

    def _eval_Had(self, e):
        out = self(e.args[0])
        for a in e.args[1:]:
            out = out * self(a)
        return out

    def _eval_Transpose(self, e):   # a matrix's transpose
        return self(e.arg).T

    def _eval_Act(self, e):
        return activation_functions(e.fn)[0](self(e.arg))

    def _eval_ActDeriv(self, e):
        return activation_functions(e.fn)[1](self(e.arg))


class BatchLast(Evaluator):
    """Vectors are (n, B) arrays: the batch runs along the columns."""

    def _eval_MatVec(self, e):
        m = self(e.mat)
        return (m.T if e.transpose else m) @ self(e.vec)

    def _eval_Outer(self, e):       # summed over the batch: sum_b u_b v_b^T
        return self(e.left) @ self(e.right).T

    def _eval_Repeat(self, e):
        return np.repeat(self(e.arg), e.k, axis=0)

    def _eval_BlockSum(self, e):
        v = self(e.arg)
        return v.reshape((-1, e.k) + v.shape[1:]).sum(axis=1)


class BatchFirst(Evaluator):
    """Vectors are (..., n) arrays: the batch axes come first, the vector's axis last."""

    def _eval_MatVec(self, e):
        m = self(e.mat)
        return self(e.vec) @ (m if e.transpose else m.T)

    def _eval_Outer(self, e):       # summed over the batch: sum_b u_b v_b^T
        u, v = self(e.left), self(e.right)
        return u.reshape(-1, u.shape[-1]).T @ v.reshape(-1, v.shape[-1])

    def _eval_Repeat(self, e):
        return np.repeat(self(e.arg), e.k, axis=-1)

    def _eval_BlockSum(self, e):
        v = self(e.arg)
        return v.reshape(v.shape[:-1] + (-1, e.k)).sum(axis=-1)


LAYOUTS = {"last": BatchLast, "first": BatchFirst}


def evaluate(expr, values: dict, batch: str = "last"):
    """Evaluate a vector-level tree with NumPy.

    Arguments:
        expr: an ``lstmsym.expr`` node.
        values: leaf (``Sym``, ``Grad``, ``OutGrad``) -> array; a missing ``OutGrad`` is zero.
        batch: "last" (vectors (n, B), ``BatchLast``) or "first" (vectors (..., n),
            ``BatchFirst``).

    Returns:
        the value: a vector in the layout's shape, an (n, m) array for a matrix.
    """
    try:
        layout = LAYOUTS[batch]
    except KeyError:
        raise LstmsymError(f"batch axis {batch!r}: choose 'first' or 'last'") from None
    return layout(values)(expr)


__all__ = ["BatchFirst", "BatchLast", "Evaluator", "FUNCTIONS", "IDENTITY", "SYMPY_FUNCTIONS",
           "activation_functions", "compile_scalar", "evaluate", "scalar_eval", "stable_sigmoid"]
