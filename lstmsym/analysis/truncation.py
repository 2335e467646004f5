"""Truncated BPTT on a long-lag task: what a gradient cut at k2 steps cannot see.

The task: a sequence of T steps whose loss depends only on the last output, L = <u, h_{T-1}>,
so everything the gradient says about early inputs had to travel back T-1 steps. The generated
kernel (lstmsym.codegen, contract in issue 2) computes the gradient with full BPTT and with
truncated BPTT (k1, k2) = (T, k2): one backward pass from the end through the last k2 steps,
the notes' "only back-propagate for some smaller number of steps". Measured:

- ||dL/dx_s|| over the lag T-1-s (full BPTT): how far back the gradient reaches at all;
- for each k2: the relative error and cosine of the truncated parameter gradient against the
  full one, and the longest lag at which the input gradient is still non-zero.

For ``lstm1997`` the kernel's ``truncate="1997"`` (Hochreiter & Schmidhuber's rule: error
flows back only through the CEC) is measured as well.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from lstmsym.analysis.evaluate import dimension_sizes
from lstmsym.cells import get_cell
from lstmsym.errors import LstmsymError


@dataclass
class TruncationEffect:
    """Full against truncated BPTT for one cell on the long-lag task."""

    cell: str
    steps: int
    lags: list                       # 0..T-1
    input_grad_norms: list           # ||dL/dx_{T-1-lag}|| under full BPTT (batch summed)
    k2s: list
    rel_error: list                  # ||g_k2 - g|| / ||g|| over all parameters
    cosine: list
    reach: list                      # longest lag with a non-zero input gradient
    full_reach: int
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"cell": self.cell, "steps": self.steps, "lag": self.lags,
                "input_grad_norm": self.input_grad_norms, "k2": self.k2s,
                "param_grad_rel_error": self.rel_error, "param_grad_cosine": self.cosine,
                "input_grad_reach": self.reach, "full_reach": self.full_reach, **self.extra}


def _flat(d_params: dict, names) -> np.ndarray:
    return np.concatenate([np.ravel(d_params[n]) for n in names])


def _reach(d_x: np.ndarray, tol: float = 0.0) -> int:
    """Longest lag T-1-s at which dL/dx_s is non-zero."""
    T = d_x.shape[0]
    nz = [s for s in range(T) if np.max(np.abs(d_x[s])) > tol]
    return (T - 1 - min(nz)) if nz else -1


def truncation_effect(cell, steps: int = 60, k2s=(1, 5, 10, 20, 40), hidden_size: int = 8,
                      input_size: int = 4, batch: int = 4, seed: int = 0,
                      forget_bias: float | None = None, progress: bool = False
                      ) -> TruncationEffect:
    """Full and truncated (k1 = T, k2) BPTT gradients of L = <u, h_{T-1}> for ``cell``.

    Arguments:
        cell: a cell name; steps: T; k2s: the truncation lengths (each >= 1).
        forget_bias: if given and the cell has a parameter ``b_f``, it is set to this value
            (a large bias keeps the forget gate open).

    >>> e = truncation_effect("elman-tanh", steps=6, k2s=(2, 6), hidden_size=3)
    >>> e.reach, e.full_reach, e.rel_error[-1] == 0.0
    ([1, 5], 5, True)
    """
    for k in k2s:
        if int(k) != k or k < 1:
            raise LstmsymError(f"k2 = {k}: the truncation length must be a whole number >= 1")
    if steps < 2:
        raise LstmsymError(f"steps = {steps}: the long-lag task needs at least 2 steps")
    if int(batch) != batch or batch < 1:
        raise LstmsymError(f"batch = {batch}: must be a positive whole number")
    dimension_sizes(get_cell(cell), hidden_size, input_size)   # LstmsymError if unusable
    from lstmsym.codegen import load_kernel    # imported when used, like lstmsym's own export
    name = get_cell(cell).name
    if progress:
        print(f"truncation: {name}, generating the kernel", file=sys.stderr, flush=True)
    kernel = load_kernel(name)
    params = kernel.init_params(input_size, hidden_size, seed=seed, dtype=np.float64)
    if forget_bias is not None and "b_f" in params:
        params["b_f"] = np.full_like(params["b_f"], forget_bias)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((steps, batch, input_size))
    outputs, cache = kernel.forward(params, x)
    u = rng.standard_normal(outputs["h"].shape[1:])
    d_h = np.zeros_like(outputs["h"])
    d_h[-1] = u
    names = list(params)
    full_params, full_x, _ = kernel.backward(params, cache, {"h": d_h})
    g = _flat(full_params, names)
    norms = [float(np.linalg.norm(full_x[steps - 1 - lag])) for lag in range(steps)]
    rel, cos, reach = [], [], []
    for k in k2s:
        if progress:
            print(f"truncation: {name}, k2 = {k}", file=sys.stderr, flush=True)
        d_params, d_x, _ = kernel.backward(params, cache, {"h": d_h},
                                           truncate=(steps, int(min(k, steps))))
        gk = _flat(d_params, names)
        rel.append(float(np.linalg.norm(gk - g) / np.linalg.norm(g)))
        cos.append(float(gk @ g / (np.linalg.norm(gk) * np.linalg.norm(g))))
        reach.append(_reach(d_x))
    extra = {}
    if name == "lstm1997":
        d_params, d_x, _ = kernel.backward(params, cache, {"h": d_h}, truncate="1997")
        g97 = _flat(d_params, names)
        extra["truncated_1997"] = {
            "param_grad_rel_error": float(np.linalg.norm(g97 - g) / np.linalg.norm(g)),
            "param_grad_cosine": float(g97 @ g / (np.linalg.norm(g97) * np.linalg.norm(g))),
            "input_grad_norm": [float(np.linalg.norm(d_x[steps - 1 - lag]))
                                for lag in range(steps)]}
    return TruncationEffect(name, steps, list(range(steps)), norms, [int(k) for k in k2s],
                            rel, cos, reach, _reach(full_x), extra)
