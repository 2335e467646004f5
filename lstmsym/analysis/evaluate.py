"""Numbers from the vector-level trees, for the analyses: the column layout, cell parameters,
and a forward pass that keeps everything.

The analyses need a cell's forward step and its *derived* backward step as numbers, at sizes
where SymPy would be slow. ``evaluate(expr, values)`` (lstmsym.numeval's, re-exported here)
walks the same trees the printers print (lstmsym/expr.py); on its default ``BatchLast`` layout
every vector is a 2-D array of shape (n, B), B columns evaluated at once, which is how a whole
Jacobian comes out of one backward pass (B basis cotangents side by side).
``activation(name)`` gives (f, f') from numeval's one activation table (``FUNCTIONS``,
``stable_sigmoid``).

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
from lstmsym.numeval import FUNCTIONS, activation_functions, evaluate, stable_sigmoid
from lstmsym.ops import ACTIVATIONS


def activation(name: str):
    """(f, f') as NumPy functions for an activation name; LstmsymError if unknown.

    >>> f, fprime = activation("tanh")
    >>> float(fprime(0.0))
    1.0
    """
    if name in FUNCTIONS:
        return FUNCTIONS[name]
    if name in ACTIVATIONS:             # a user activation (lstmsym.ops.scalar_activation)
        return activation_functions(ACTIVATIONS[name])
    known = list(FUNCTIONS) + [a for a in ACTIVATIONS if a not in FUNCTIONS]
    raise LstmsymError(f"unknown activation {name!r}; the analyses know: " + ", ".join(known))


# ----- sizes and parameters of a cell -----------------------------------------------------------
def dimension_sizes(cell, hidden_size: int, input_size: int) -> dict:
    """Sizes of every dimension name a cell uses (H, I and derived ones such as blocks G)."""
    for what, n in (("hidden size", hidden_size), ("input size", input_size)):
        if int(n) != n or n < 1:
            raise LstmsymError(f"{what} = {n}: must be a positive whole number")
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


__all__ = ["FUNCTIONS", "activation", "dimension_sizes", "evaluate", "random_params",
           "run_forward", "spectral_radius", "stable_sigmoid", "with_spectral_radius"]
