"""Numbers from the vector-level trees: a small NumPy evaluator for the analyses.

The analyses need a cell's forward step and its *derived* backward step as numbers, at sizes
where SymPy would be slow. ``evaluate(expr, values)`` walks the same trees the printers print
(lstmsym/expr.py) and computes them with NumPy. Every vector is a 2-D array of shape (n, B):
B columns are evaluated at once, which is how a whole Jacobian comes out of one backward pass
(B basis cotangents side by side).

``random_params`` draws parameters for any cell; ``run_forward`` runs a cell over a sequence and
keeps every intermediate of every step (the cache the derived backward step reads).

>>> import numpy as np
>>> from lstmsym.expr import Sym
>>> from lstmsym.ops import tanh
>>> W = Sym("W", "param", ("H", "H")); h = Sym("h", "state", ("H",), -1)
>>> float(evaluate(tanh(W @ h), {W: np.eye(1) * 2.0, h: np.ones((1, 1))})[0, 0])  # tanh(2)
0.9640275800758169
"""
from __future__ import annotations

import numpy as np

from lstmsym.errors import LstmsymError
from lstmsym.expr import (Act, ActDeriv, Add, BlockSum, Grad, Had, MatVec, Ones, OutGrad, Outer,
                          Repeat, Scale, Sym, Transpose, Zero)


# ----- scalar activations and their derivatives, in NumPy -------------------------------------
def stable_sigmoid(z):
    """1/(1+e^{-z}) without overflow for any finite z."""
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_prime(z):
    s = stable_sigmoid(z)
    return s * (1.0 - s)


def _relu(z):
    return np.maximum(z, 0.0)


def _relu_prime(z):
    return (np.asarray(z) > 0).astype(float)


FUNCTIONS = {
    "sigmoid": (stable_sigmoid, _sigmoid_prime),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (_relu, _relu_prime),
    "identity": (lambda z: np.asarray(z, dtype=float), lambda z: np.ones_like(z, dtype=float)),
    # Hochreiter & Schmidhuber 1997, Sec. 5: g = 4 sigma - 2, h = 2 sigma - 1
    "g1997": (lambda z: 4.0 * stable_sigmoid(z) - 2.0, lambda z: 4.0 * _sigmoid_prime(z)),
    "h1997": (lambda z: 2.0 * stable_sigmoid(z) - 1.0, lambda z: 2.0 * _sigmoid_prime(z)),
}


def activation(name: str):
    """(f, f') as NumPy functions for an activation name; LstmsymError if unknown."""
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise LstmsymError(f"unknown activation {name!r}; the analyses know: "
                           + ", ".join(FUNCTIONS)) from None


_USER_FUNCTIONS: dict = {}


def _numeric_fn(act, derivative: bool):
    if act.name in FUNCTIONS:
        return FUNCTIONS[act.name][1 if derivative else 0]
    key = (act.name, derivative)
    if key not in _USER_FUNCTIONS:
        # A user activation: its SymPy expression (built in code, never from a string).
        import sympy
        z = sympy.Symbol("z", real=True)
        body = act.deriv(z) if derivative else act.scalar(z)
        from lstmsym.verification.numeric import scalar_eval  # one interpreter, no lambdify
        _USER_FUNCTIONS[key] = lambda a: np.asarray(scalar_eval(body, {z: a}), dtype=float) * \
            np.ones_like(a, dtype=float)
    return _USER_FUNCTIONS[key]


# ----- the evaluator ----------------------------------------------------------------------------
def evaluate(expr, values: dict) -> np.ndarray:
    """Evaluate a vector-level tree with NumPy.

    Arguments:
        expr: an ``lstmsym.expr`` node.
        values: leaf -> array; keys are ``Sym`` (vectors as (n, B) arrays, matrices as (n, m)),
            ``Grad`` and ``OutGrad`` nodes. A missing ``OutGrad`` counts as zero.

    Returns:
        an (n, B) array for a vector, (n, m) for a matrix.
    """
    if isinstance(expr, (Sym, Grad)):
        try:
            return values[expr]
        except KeyError:
            raise LstmsymError(f"no value for {expr!r} while evaluating") from None
    if isinstance(expr, OutGrad):
        return values.get(expr, 0.0)
    if isinstance(expr, Add):
        out = evaluate(expr.args[0], values)
        for a in expr.args[1:]:
            out = out + evaluate(a, values)
        return out
    if isinstance(expr, Scale):
        return float(expr.coeff) * evaluate(expr.arg, values)
    if isinstance(expr, Had):
        out = evaluate(expr.args[0], values)
        for a in expr.args[1:]:
            out = out * evaluate(a, values)
        return out
    if isinstance(expr, MatVec):
        m = evaluate(expr.mat, values)
        return (m.T if expr.transpose else m) @ evaluate(expr.vec, values)
    if isinstance(expr, Transpose):
        return evaluate(expr.arg, values).T
    if isinstance(expr, Outer):
        return evaluate(expr.left, values) @ evaluate(expr.right, values).T
    if isinstance(expr, Act):
        return _numeric_fn(expr.fn, False)(evaluate(expr.arg, values))
    if isinstance(expr, ActDeriv):
        return _numeric_fn(expr.fn, True)(evaluate(expr.arg, values))
    if isinstance(expr, Repeat):
        return np.repeat(evaluate(expr.arg, values), expr.k, axis=0)
    if isinstance(expr, BlockSum):
        v = evaluate(expr.arg, values)
        return v.reshape(v.shape[0] // expr.k, expr.k, v.shape[1]).sum(axis=1)
    if isinstance(expr, Ones):
        return 1.0
    if isinstance(expr, Zero):
        return 0.0
    raise LstmsymError(f"cannot evaluate {type(expr).__name__} node {expr!r}")


# ----- sizes and parameters of a cell -----------------------------------------------------------
def dimension_sizes(cell, hidden_size: int, input_size: int) -> dict:
    """Sizes of every dimension name a cell uses (H, I and derived ones such as blocks G)."""
    sizes = {"H": hidden_size, "I": input_size}
    for name, rel in (cell.dims or {}).items():
        try:
            base, div = rel
            if sizes[base] % div:
                raise LstmsymError(f"cell {cell.name!r}: hidden size {sizes[base]} is not a "
                                   f"multiple of {div} (dimension {name})")
            sizes[name] = sizes[base] // div
        except (TypeError, ValueError, KeyError):
            raise LstmsymError(f"cell {cell.name!r}: cannot size dimension {name!r} "
                               f"from {rel!r}") from None
    return sizes


def _size(dim, sizes):
    if isinstance(dim, int):
        return dim
    try:
        return sizes[dim]
    except KeyError:
        raise LstmsymError(f"no size for dimension {dim!r}") from None


def random_params(cell, sizes: dict, seed: int = 0, radius: float | None = None,
                  scale: float = 1.0) -> dict:
    """Random parameters for ``cell``: Sym -> array.

    Matrices are N(0, scale^2 / columns); vectors (biases, peepholes) N(0, 0.1^2) unless the
    cell's ``init`` gives a constant. With ``radius``, every square hidden-to-hidden matrix
    (shape (H, H)) is rescaled to that spectral radius, the knob of seed 001's analysis.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for p in cell.params:
        shape = tuple(_size(d, sizes) for d in p.shape)
        if len(shape) == 2:
            m = rng.standard_normal(shape) * scale / np.sqrt(shape[1])
            if radius is not None and shape[0] == shape[1] and p.shape[0] == p.shape[1]:
                m = with_spectral_radius(m, radius)
            out[p] = m
        else:
            init = (cell.init or {}).get(p.name)
            if isinstance(init, (int, float)) and not isinstance(init, bool):
                out[p] = np.full((shape[0], 1), float(init))
            else:
                out[p] = 0.1 * rng.standard_normal((shape[0], 1))
    return out


def with_spectral_radius(matrix, radius: float) -> np.ndarray:
    """``matrix`` rescaled so that its largest |eigenvalue| is ``radius``."""
    matrix = np.asarray(matrix, dtype=float)
    rho = spectral_radius(matrix)
    if rho == 0.0:
        raise LstmsymError("cannot rescale a nilpotent matrix to a spectral radius")
    return matrix * (radius / rho)


def spectral_radius(matrix) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(matrix, dtype=float)))))


# ----- a forward pass that keeps everything -----------------------------------------------------
def run_forward(cell, params: dict, xs: np.ndarray, state0: dict | None = None) -> list:
    """Run ``cell`` over inputs ``xs`` of shape (T, I); return one dict per step.

    Step t's dict maps every Sym the step's equations read or write, at the times the derived
    backward step uses (t-1 for previous states, t for the rest), to its value, plus the
    parameters. Vectors are (n, 1) arrays.
    """
    xs = np.asarray(xs, dtype=float)
    state = {s.name: np.asarray(state0[s.name], dtype=float).reshape(-1, 1)
             for s in cell.states if state0 is not None and s.name in state0}
    steps = []
    for t in range(xs.shape[0]):
        values = dict(params)
        for x in cell.inputs:
            values[x.at(0)] = xs[t].reshape(-1, 1)
        for s in cell.states:
            if s.name not in state:   # zero initial state, sized from the parameters
                state[s.name] = np.zeros((_state_size(cell, s, params), 1))
            values[s.at(-1)] = state[s.name]
        for eq in cell.equations:
            values[eq.target.at(0)] = evaluate(eq.expr, values)
        for s in cell.states:
            state[s.name] = values[s.at(0)]
        steps.append(values)
    return steps


def _state_size(cell, s, params) -> int:
    for p, v in params.items():
        for axis, d in enumerate(p.shape):
            if d == s.shape[0]:
                return v.shape[axis]
    raise LstmsymError(f"cell {cell.name!r}: cannot tell the size of state {s.name!r}")
