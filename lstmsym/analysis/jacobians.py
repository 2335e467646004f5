"""Jacobian chains dS_t/dS_{t-k}: why Elman cells forget and the LSTM's CEC does not.

Seed 001 ("Vanishing gradient"): the gradient reaching step t-k is the upstream gradient times
a product of k per-step Jacobians, each diag(f'(z)) times the recurrent weights; it shrinks
along directions where the singular values are below 1 and grows where they are above 1.
Here the per-step Jacobian is not written by hand: it is read off the *derived* backward step
(lstmsym.derive), whose carry terms give J_t^T u for any cotangent u. Feeding the identity as u
gives the whole J_t at once.

For an LSTM the cell state's own block dC_t/dC_{t-1} (h_{t-1} held fixed) is the constant error
carousel: exactly the identity for ``lstm1997`` (s_c(t) = s_c(t-1) + y_in g), diag(f_t) for the
forget-gate ``lstm``; its product over k steps is the CEC path of the error.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from lstmsym.analysis.evaluate import (dimension_sizes, evaluate, random_params, run_forward)
from lstmsym.cells import get_cell
from lstmsym.derive import derive
from lstmsym.errors import LstmsymError
from lstmsym.expr import Grad


def state_slices(cell, sizes: dict) -> dict:
    """state name -> slice of the stacked state vector (states in the cell's order)."""
    out, start = {}, 0
    for s in cell.states:
        n = sizes[s.shape[0]] if not isinstance(s.shape[0], int) else s.shape[0]
        out[s.name] = slice(start, start + n)
        start += n
    return out


def step_jacobian(derivation, values: dict, slices: dict) -> np.ndarray:
    """J_t = d(S_t)/d(S_{t-1}) for the stacked states, from the derived backward step.

    Arguments:
        derivation: ``derive(cell)`` (or with ``truncation="1997"``).
        values: one step of ``run_forward`` (forward values at t, previous states at t-1).
        slices: ``state_slices(cell, sizes)``.

    Returns:
        an (n, n) array, n the stacked state size; entry (i, j) is dS_t[i]/dS_{t-1}[j].
    """
    cell = derivation.cell
    n = max(s.stop for s in slices.values())
    eye = np.eye(n)
    env = dict(values)
    states = set(cell.state_names)
    for v in derivation.order:
        # The step's own terms only: no output gradient, nothing from step t+1 (the cotangent
        # on the states at t plays that part).
        local = [t.expr for t in derivation.grads[v] if t.via is not None and t.via.time == 0]
        total = eye[slices[v.name]] if v.name in states else 0.0
        for term in local:
            total = total + evaluate(term, env)
        env[Grad(v)] = total if not np.isscalar(total) else np.zeros((_rows(v, values), n))
    jt = np.zeros((n, n))
    for s in cell.states:
        carried = 0.0
        for term in derivation.carry[s.name]:
            carried = carried + evaluate(term.expr, env)
        if not np.isscalar(carried):
            jt[slices[s.name], :] = carried
    return jt.T


def _rows(v, values):
    return values[v].shape[0]


@dataclass
class JacobianChain:
    """dS_T/dS_{T-k} for k = 1..K along one random trajectory of a cell.

    Attributes:
        cell: cell name; of, wrt: the state blocks (e.g. "h", "h" or "C", "C").
        ks: 1..K; norms: spectral norm of the block for each k; singular_values: all of them.
        cec_norms: for cells with a state C, the spectral norm of the product of the per-step
            (C, C) blocks (the CEC path, h held fixed); None otherwise.
        cec_products: that product's diagonal (the product of the carousel's self-factors) at
            the largest k, as a list.
    """

    cell: str
    of: str
    wrt: str
    truncation: str | None
    hidden_size: int
    radius: float | None
    ks: list
    norms: list
    singular_values: list
    cec_norms: list | None = None
    cec_products: list | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"cell": self.cell, "of": self.of, "wrt": self.wrt,
                "truncation": self.truncation, "hidden_size": self.hidden_size,
                "radius": self.radius, "k": self.ks, "spectral_norm": self.norms,
                "singular_values": self.singular_values, "cec_norm": self.cec_norms,
                "cec_diagonal_at_kmax": self.cec_products, **self.extra}


def trajectory(cell, steps: int, hidden_size: int = 8, input_size: int = 4, seed: int = 0,
               radius: float | None = None, scale: float = 1.0, input_scale: float = 1.0,
               forget_bias: float | None = None):
    """Random parameters and inputs, and the forward pass: (params, sizes, forward steps).

    ``forget_bias`` sets the bias ``b_f`` of cells that have one (an open forget gate).
    """
    cell = get_cell(cell)
    sizes = dimension_sizes(cell, hidden_size, input_size)
    params = random_params(cell, sizes, seed=seed, radius=radius, scale=scale)
    if forget_bias is not None:
        for p in params:
            if p.name == "b_f":
                params[p] = np.full_like(params[p], forget_bias)
    rng = np.random.default_rng(seed + 1)
    xs = input_scale * rng.standard_normal((steps, sizes["I"]))
    return params, sizes, run_forward(cell, params, xs)


def step_jacobians(cell, steps: int, truncation: str | None = None, **kw) -> tuple:
    """Per-step Jacobians J_1..J_T along a random trajectory: (list of arrays, slices, forward)."""
    cell = get_cell(cell)
    _, sizes, fwd = trajectory(cell, steps, **kw)
    d = derive(cell, truncation=truncation)
    slices = state_slices(cell, sizes)
    return [step_jacobian(d, values, slices) for values in fwd], slices, fwd


def jacobian_chain(cell, k_max: int = 50, of: str = "h", wrt: str | None = None,
                   truncation: str | None = None, hidden_size: int = 8, input_size: int = 4,
                   seed: int = 0, radius: float | None = None, scale: float = 1.0,
                   forget_bias: float | None = None, progress: bool = False) -> JacobianChain:
    """The chain dS_T/dS_{T-k} of ``cell`` for k = 1..k_max, from the derived per-step Jacobian.

    ``radius`` rescales every hidden-to-hidden matrix to that spectral radius (seed 001's knob).

    >>> c = jacobian_chain("lstm", k_max=3, of="C", hidden_size=2)
    >>> len(c.norms), c.cec_norms is not None
    (3, True)
    """
    if k_max < 1:
        raise LstmsymError(f"k = {k_max}: the number of steps k must be at least 1")
    cell = get_cell(cell)
    wrt = wrt or of
    for name in (of, wrt):
        if name not in cell.state_names:
            raise LstmsymError(f"cell {cell.name!r} has no state {name!r}; its states: "
                               + ", ".join(cell.state_names))
    if progress:
        print(f"jacobians: {cell.name}, {k_max} steps", file=sys.stderr, flush=True)
    js, slices, fwd = step_jacobians(cell, k_max, truncation, hidden_size=hidden_size,
                                     input_size=input_size, seed=seed, radius=radius,
                                     scale=scale, forget_bias=forget_bias)
    n = js[0].shape[0]
    product = np.eye(n)
    has_cec = "C" in cell.state_names
    cec = np.eye(slices["C"].stop - slices["C"].start) if has_cec else None
    ks, norms, svals, cec_norms = [], [], [], []
    for k in range(1, k_max + 1):
        j = js[k_max - k]               # J_{T-k+1}: product = dS_T/dS_{T-k}
        product = product @ j
        block = product[slices[of], slices[wrt]]
        s = np.linalg.svd(block, compute_uv=False)
        ks.append(k)
        norms.append(float(s[0]))
        svals.append([float(v) for v in s])
        if has_cec:
            cec = cec @ j[slices["C"], slices["C"]]
            cec_norms.append(float(np.linalg.norm(cec, 2)))
    return JacobianChain(
        cell.name, of, wrt, truncation, hidden_size, radius, ks, norms, svals,
        cec_norms if has_cec else None,
        [float(v) for v in np.diag(cec)] if has_cec else None)


def gate_product(fwd: list, name: str, k: int) -> np.ndarray:
    """prod over the last k steps of the forward value ``name`` (e.g. the forget gate f)."""
    out = 1.0
    for values in fwd[len(fwd) - k:]:
        out = out * next(v for key, v in values.items()
                         if getattr(key, "name", None) == name and key.time == 0)
    return np.ravel(out)
