"""Hochreiter's error-flow formula, computed as the sum over paths it is, and checked against BPTT.

Seed 003 (Hochreiter & Schmidhuber 1997, Sec. 3.1): in a fully connected net of n non-input
units with y^i(t) = f_i(net_i(t)) and net_i(t) = sum_j w_ij y^j(t-1), the error signal of unit
j is back-propagated as

    theta_j(t) = f'_j(net_j(t)) sum_i w_ij theta_i(t+1),

and the error arriving at unit v, q steps back, from unit u at t is a sum over all n^(q-1)
paths l_0 = u, l_1, ..., l_q = v:

    d theta_v(t-q) / d theta_u(t) = sum_{l_1..l_{q-1}} prod_{m=1}^{q} f'_{l_m}(net_{l_m}(t-m)) w(l_m <- l_{m-1}),

where w(l_m <- l_{m-1}) is the weight that carries the error from l_{m-1} back to l_m: w_ij is
the weight *from j to i*, so that factor is w_{l_{m-1} l_m}. (Seed 003 prints the subscript as
w_{l_m l_{m-1}}; with w_ij from j to i that reading is the transpose, and ``path_sum`` with
``literal_indices=True`` shows it disagrees with BPTT for a non-symmetric W.)

``path_sum`` enumerates the paths one by one (no matrix products); ``bptt_flow`` runs the
theta recursion above. Each product |f' w| > 1 makes the sum blow up, < 1 makes it vanish.
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass

import numpy as np

from lstmsym.analysis.evaluate import activation
from lstmsym.errors import LstmsymError


@dataclass
class Net:
    """A fully connected recurrent net and one forward run: net(s) for s = 0..t."""

    W: np.ndarray          # (n, n), W[i, j] = w_ij, the weight from unit j to unit i
    V: np.ndarray          # (n, I) input weights
    act: str
    xs: np.ndarray         # (t+1, I) inputs
    nets: np.ndarray       # (t+1, n)

    @property
    def n(self) -> int:
        return self.W.shape[0]

    def fprime(self, s: int) -> np.ndarray:
        return activation(self.act)[1](self.nets[s])


def random_net(n: int = 3, steps: int = 12, act: str = "sigmoid", weight_scale: float = 4.0,
               input_size: int = 2, seed: int = 0) -> Net:
    """A random net (w_ij ~ N(0, weight_scale^2 / n)) run on random inputs for ``steps`` steps.

    net_i(s) = sum_j w_ij y^j(s-1) + sum_k v_ik x_k(s), y(-1) = 0.
    """
    if n < 1:
        raise LstmsymError(f"units = {n}: need at least one unit")
    if steps < 1:
        raise LstmsymError(f"steps = {steps}: need at least one step")
    f, _ = activation(act)
    rng = np.random.default_rng(seed)
    W = weight_scale * rng.standard_normal((n, n)) / np.sqrt(n)
    V = rng.standard_normal((n, input_size))
    xs = rng.standard_normal((steps + 1, input_size))
    y = np.zeros(n)
    nets = []
    for s in range(steps + 1):
        net = W @ y + V @ xs[s]
        nets.append(net)
        y = f(net)
    return Net(W, V, act, xs, np.array(nets))


def path_sum(net: Net, q: int, t: int | None = None, literal_indices: bool = False,
             progress: bool = False) -> np.ndarray:
    """d theta_v(t-q) / d theta_u(t) for every (v, u), by summing over all paths.

    Returns an (n, n) array indexed [v, u]. Cost n^(q+1) products: for small nets only.
    With ``literal_indices`` the weight factor is w_{l_m l_{m-1}} as printed in seed 003.
    """
    t = net.nets.shape[0] - 1 if t is None else t
    if q < 1:
        raise LstmsymError(f"q = {q}: the number of steps back must be at least 1")
    if q > t:
        raise LstmsymError(f"q = {q} reaches before the start of the run (t = {t})")
    n = net.n
    w = net.W.T if literal_indices else net.W     # w(to <- from) as w[from, to]
    fp = [None] + [net.fprime(t - m) for m in range(1, q + 1)]
    total = np.zeros((n, n))
    paths = itertools.product(range(n), repeat=q + 1)      # (l_0, ..., l_q)
    count = n ** (q + 1)
    for index, path in enumerate(paths):
        if progress and count > 200_000 and index % 200_000 == 0:
            print(f"error flow: q = {q}, path {index:,} of {count:,}", file=sys.stderr,
                  flush=True)
        prod = 1.0
        for m in range(1, q + 1):
            prod *= fp[m][path[m]] * w[path[m - 1], path[m]]
        total[path[q], path[0]] += prod
    return total


def bptt_flow(net: Net, q: int, t: int | None = None) -> np.ndarray:
    """The same [v, u] matrix by the BPTT recursion theta(s) = f'(net(s)) o W^T theta(s+1)."""
    t = net.nets.shape[0] - 1 if t is None else t
    if q < 1 or q > t:
        raise LstmsymError(f"q = {q}: need 1 <= q <= t = {t}")
    theta = np.eye(net.n)                   # column u: theta(t) = e_u
    for m in range(1, q + 1):
        theta = net.fprime(t - m)[:, None] * (net.W.T @ theta)
    return theta


@dataclass
class ErrorFlowCheck:
    """Path sum against BPTT for q = 1..Q, and the size of the flow over longer lags."""

    units: int
    act: str
    weight_scale: float
    qs: list
    path_sums: list        # d theta_v(t-q)/d theta_u(t) for the chosen (v, u)
    bptt: list
    max_abs_diff: float
    max_rel_diff: float
    literal_max_abs_diff: float
    flow_qs: list
    flow_by_scale: dict    # activation -> weight scale -> max_{u,v} |flow| for each lag
    u: int = 0
    v: int = 0

    def to_dict(self) -> dict:
        return {"units": self.units, "activation": self.act, "weight_scale": self.weight_scale,
                "u": self.u, "v": self.v, "q": self.qs, "path_sum": self.path_sums,
                "bptt": self.bptt, "max_abs_diff": self.max_abs_diff,
                "max_rel_diff": self.max_rel_diff,
                "seed003_literal_indices_max_abs_diff": self.literal_max_abs_diff,
                "flow_q": self.flow_qs,
                "flow_max_abs": {a: {str(k): v for k, v in d.items()}
                                 for a, d in self.flow_by_scale.items()}}


def check_error_flow(units: int = 3, max_q: int = 6, act: str = "sigmoid",
                     weight_scale: float = 4.0, scales=(0.5, 1.0, 2.0, 4.0, 8.0),
                     flow_activations=("sigmoid", "tanh", "identity"), lags: int = 40,
                     seed: int = 0, progress: bool = False) -> ErrorFlowCheck:
    """Hochreiter's path sum against BPTT for q = 1..max_q, plus the flow's size over ``lags``.

    The flow curves: for each activation and weight scale, max over (u, v) of
    |d theta_v(t-q)/d theta_u(t)| for q = 1..lags (by BPTT, once the path sum has been checked).
    """
    if max_q < 1:
        raise LstmsymError(f"q = {max_q}: the number of steps back must be at least 1")
    if lags < 1:
        raise LstmsymError(f"lags = {lags}: the flow curves need at least one lag")
    net = random_net(units, max(max_q, lags) + 1, act, weight_scale, seed=seed)
    qs, ps, bp = [], [], []
    max_abs = max_rel = literal = 0.0
    for q in range(1, max_q + 1):
        if progress:
            print(f"error flow: q = {q} ({units ** (q + 1):,} paths)", file=sys.stderr,
                  flush=True)
        a, b = path_sum(net, q, progress=progress), bptt_flow(net, q)
        lit = path_sum(net, q, literal_indices=True)
        max_abs = max(max_abs, float(np.max(np.abs(a - b))))
        max_rel = max(max_rel, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)))
        literal = max(literal, float(np.max(np.abs(lit - b))))
        qs.append(q)
        ps.append(float(a[units - 1, 0]))
        bp.append(float(b[units - 1, 0]))
    flow_qs = list(range(1, lags + 1))
    by_scale = {}
    for a in flow_activations:
        by_scale[a] = {}
        for s in scales:
            other = random_net(units, lags + 1, a, s, seed=seed)
            by_scale[a][float(s)] = [float(np.max(np.abs(bptt_flow(other, q))))
                                     for q in flow_qs]
    return ErrorFlowCheck(units, act, weight_scale, qs, ps, bp, max_abs, max_rel, literal,
                          flow_qs, by_scale, u=0, v=units - 1)
