"""The analyses behind ``lstmsym analyze <topic>``: numbers, a text summary and figures.

Each ``analyze_<topic>(...)`` runs one analysis with its defaults (each within 30 s on a 2-core
machine) and returns a ``Report``: ``data`` (JSON-ready), ``lines`` (the summary the CLI
prints) and ``figures`` (stem -> a function building the matplotlib figure, called only when
figures are asked for, so matplotlib stays unimported otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstmsym.analysis import errorflow, jacobians, recursion, truncation
from lstmsym.errors import LstmsymError

TOPICS = ("linear", "saturation", "jacobians", "errorflow", "truncation")
ELMAN_AND_LSTM = ("elman-tanh", "elman-sigmoid", "elman-relu", "lstm", "lstm1997")


@dataclass
class Report:
    topic: str
    data: dict
    lines: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _table(header, rows) -> list:
    cells = [list(map(str, header))] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]


# ----- linear -------------------------------------------------------------------------------------
def analyze_linear(matrix=None, radii=(0.9, 1.0, 1.1), size: int = 8, steps: int = 60,
                   seed: int = 0) -> Report:
    """Response of the linear recursion to one input: measured growth against lambda_max."""
    if matrix is not None:
        W = recursion.check_square(matrix)
        mats = [(f"given W ({W.shape[0]}x{W.shape[0]})", W)]
    else:
        if size < 1:
            raise LstmsymError(f"size = {size}: the hidden size must be at least 1")
        mats = recursion.demo_matrices(size, radii, seed)
    responses = [recursion.linear_response(W, steps=steps, label=label) for label, W in mats]
    lines = [f"h(t) = W h(t-1) + C x(t), one input at t = 0, {steps} steps (C = I, x(0) = 1)"]
    lines += _table(["W", "lambda_max", "growth rate", "||h(0)||", f"||h({steps})||",
                     "c lambda_max^T"],
                    [[r.label, r.rho, r.growth_rate, r.norms[0], r.norms[-1], r.prediction[-1]]
                     for r in responses])
    data = {"responses": [r.to_dict() for r in responses]}

    def fig():
        from lstmsym.analysis.plotting import plot_linear
        return plot_linear(responses)
    return Report("linear", data, lines, {"linear_recursion": fig})


# ----- saturation -----------------------------------------------------------------------------------
def analyze_saturation(activations=("sigmoid", "tanh", "relu"), w_min: float = -3.0,
                       w_max: float = 3.0, points: int = 61, steps: int = 50,
                       radii=(0.5, 1.0, 1.5), size: int = 8, seed: int = 0) -> Report:
    """Scalar recursions over a grid of w and vector recursions over spectral radii."""
    if points < 2 or w_max <= w_min:
        raise LstmsymError("need --points >= 2 and --w-max > --w-min")
    ws = np.round(np.linspace(w_min, w_max, points), 6)
    sweep = recursion.saturation_sweep(activations, ws, steps)
    lines = [f"scalar h(t) = f(w h(t-1) + x(t)), x(0) = 1, {steps} steps, w in "
             f"[{w_min:g}, {w_max:g}]"]
    rows = []
    for a, runs in sweep.items():
        settles = [r.settle_step for r in runs if r.settle_step is not None]
        blown = [r.w for r in runs if r.blowup_step is not None]
        best = max(runs, key=lambda r: (r.memory if r.blowup_step is None else -1))
        rows.append([a, max(settles) if settles else None,
                     f"{len(blown)}/{len(runs)}", best.memory, best.w])
    lines += _table(["activation", "max steps to saturate", "w that blow up",
                     "longest memory (no blow-up)", "at w"], rows)
    vector = []
    for a in activations:
        for label, W in recursion.demo_matrices(size, radii, seed):
            vector.append(recursion.vector_recursion(a, W, steps=steps))
    lines.append(f"vector h(t) = f(W h(t-1) + x(t)), H = {size}: memory in steps "
                 "(|dh(t)/dx(0)| > 1% of start)")
    lines += _table(["activation"] + [f"rho = {r:g}" for r in radii],
                    [[a] + [v.memory for v in vector if v.activation == a]
                     for a in activations])
    data = {"scalar": {a: [r.to_dict() for r in runs] for a, runs in sweep.items()},
            "vector": [v.to_dict() for v in vector]}

    def fig_scalar():
        from lstmsym.analysis.plotting import plot_saturation
        return plot_saturation(sweep)

    def fig_vector():
        from lstmsym.analysis.plotting import plot_vector_memory
        return plot_vector_memory(vector)
    return Report("saturation", data, lines,
                  {"saturation_scalar": fig_scalar, "saturation_vector": fig_vector})


# ----- Jacobian chains ---------------------------------------------------------------------------------
def analyze_jacobians(cells=ELMAN_AND_LSTM, k: int = 50, hidden_size: int = 8,
                      radius: float | None = 1.0, seed: int = 0, truncation_rule=None,
                      forget_bias: float | None = None, progress: bool = True) -> Report:
    """dh_t/dh_{t-k} of the Elman cells against the LSTMs' dC_t/dC_{t-k}."""
    if k < 1:
        raise LstmsymError(f"k = {k}: the number of steps back must be at least 1")
    from lstmsym.cells import get_cell
    chains = []
    for name in cells:
        cell = get_cell(name)
        of = "C" if "C" in cell.state_names else "h"
        chains.append(jacobians.jacobian_chain(cell, k, of=of, truncation=truncation_rule,
                                               hidden_size=hidden_size, seed=seed,
                                               radius=radius, forget_bias=forget_bias,
                                               progress=progress))
    shown = sorted({1, 5, 10, 20, k} & set(range(1, k + 1)))
    lines = [f"spectral norm of dS_T/dS_(T-k), H = {hidden_size}, hidden-to-hidden matrices "
             f"at spectral radius {radius}"
             + (f", forget bias {forget_bias:g}" if forget_bias is not None else "")
             + (f", truncation {truncation_rule}" if truncation_rule else "")]
    rows = []
    for c in chains:
        rows.append([c.cell, f"d{c.of}/d{c.wrt}"] + [c.norms[i - 1] for i in shown])
        if c.cec_norms is not None:
            rows.append([c.cell, "CEC dC/dC|h"] + [c.cec_norms[i - 1] for i in shown])
    lines += _table(["cell", "block"] + [f"k = {i}" for i in shown], rows)
    data = {"chains": [c.to_dict() for c in chains]}

    def fig():
        from lstmsym.analysis.plotting import plot_jacobians
        return plot_jacobians(chains)
    return Report("jacobians", data, lines, {"jacobian_chains": fig})


# ----- error flow ------------------------------------------------------------------------------------
def analyze_errorflow(units: int = 3, q: int = 6, activation: str = "sigmoid",
                      weight_scale: float = 4.0, lags: int = 40, seed: int = 0,
                      progress: bool = True) -> Report:
    """Hochreiter's path sum against BPTT, and the flow over longer lags."""
    if q < 1:
        raise LstmsymError(f"q = {q}: the number of steps back must be at least 1")
    if units ** (q + 1) > 5_000_000:
        raise LstmsymError(f"{units} units and q = {q} make {units ** (q + 1):,} paths; "
                           "keep units^(q+1) under 5,000,000")
    c = errorflow.check_error_flow(units, q, activation, weight_scale, lags=lags, seed=seed,
                                   progress=progress)
    lines = [f"fully connected net, {units} {activation} units, weights x {weight_scale:g}: "
             f"d theta_{c.v}(t-q)/d theta_{c.u}(t)"]
    lines += _table(["q", "paths", "path sum", "BPTT", "|difference|"],
                    [[q_, units ** (q_ - 1), a, b, abs(a - b)]
                     for q_, a, b in zip(c.qs, c.path_sums, c.bptt)])
    lines.append(f"all (u, v), q = 1..{q}: max |path sum - BPTT| = {c.max_abs_diff:.2e} "
                 f"(relative {c.max_rel_diff:.2e})")
    lines.append(f"with the weight subscripts read literally as w_(l_m l_(m-1)) (seed 003's "
                 f"print): max |difference| = {c.literal_max_abs_diff:.2e}")
    lines.append(f"max |flow| at q = {lags} by weight scale:")
    lines += _table(["activation"] + [f"x {s:g}" for s in next(iter(c.flow_by_scale.values()))],
                    [[a] + [v[-1] for v in d.values()] for a, d in c.flow_by_scale.items()])

    def fig():
        from lstmsym.analysis.plotting import plot_errorflow
        return plot_errorflow(c)
    return Report("errorflow", c.to_dict(), lines, {"error_flow": fig})


# ----- truncated BPTT ----------------------------------------------------------------------------------
def analyze_truncation(cells=("elman-tanh", "lstm", "lstm1997"), steps: int = 60,
                       k2s=(1, 5, 10, 20, 40), hidden_size: int = 8, batch: int = 4,
                       seed: int = 0, forget_bias: float | None = 2.0,
                       progress: bool = True) -> Report:
    """Full against truncated BPTT on the long-lag task, with the generated kernels."""
    effects = [truncation.truncation_effect(c, steps, k2s, hidden_size, batch=batch, seed=seed,
                                            forget_bias=forget_bias, progress=progress)
               for c in cells]
    lines = [f"long-lag task: T = {steps}, loss <u, h_(T-1)>, H = {hidden_size}, batch {batch}"
             + (f", forget bias {forget_bias:g}" if forget_bias is not None else "")]
    lines += _table(["cell", "||dL/dx_0||", "||dL/dx_(T-1)||"]
                    + [f"err k2={k}" for k in effects[0].k2s],
                    [[e.cell, e.input_grad_norms[-1], e.input_grad_norms[0]] + e.rel_error
                     for e in effects])
    for e in effects:
        t97 = e.extra.get("truncated_1997")
        if t97:
            lines.append(f"{e.cell} with the 1997 truncation: parameter gradient relative error "
                         f"{t97['param_grad_rel_error']:.3g}, cosine "
                         f"{t97['param_grad_cosine']:.3g}; ||dL/dx_0|| = "
                         f"{t97['input_grad_norm'][-1]:.3g}")
    data = {"effects": [e.to_dict() for e in effects]}

    def fig():
        from lstmsym.analysis.plotting import plot_truncation
        return plot_truncation(effects)
    return Report("truncation", data, lines, {"truncated_bptt": fig})
