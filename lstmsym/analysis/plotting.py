"""Figures for the analyses: matplotlib (Agg), written as PNG and SVG, readable without the text.

In a notebook the kernel's inline backend is kept, so the figures show there.

matplotlib is imported inside the functions, never when lstmsym is imported. Each ``plot_*``
takes the result objects of the analysis modules and returns a matplotlib Figure; ``save``
writes it atomically as ``<stem>.png`` and ``<stem>.svg``.
"""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np

from lstmsym.errors import LstmsymError
from lstmsym.io import write_atomic

COLORS = {"sigmoid": "tab:blue", "tanh": "tab:orange", "relu": "tab:green",
          "identity": "tab:gray"}


def _plt():
    """pyplot on the Agg backend, unless a backend was already chosen (a notebook's inline)."""
    import matplotlib
    if "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, out_dir, stem: str) -> list:
    """Write ``fig`` as out_dir/stem.png and out_dir/stem.svg (atomically); return the paths."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise LstmsymError(f"cannot write figures: {out_dir} is not a directory")
    paths = []
    for fmt, kw in (("png", {"dpi": 90}), ("svg", {"metadata": {"Date": None}})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, **kw)
        paths.append(write_atomic(out_dir / f"{stem}.{fmt}", buf.getvalue()))
    _plt().close(fig)
    return paths


def _positive(values):
    """Values for a log axis: non-positive and non-finite entries become NaN (not drawn)."""
    a = np.asarray(values, dtype=float)
    return np.where(np.isfinite(a) & (a > 0), a, np.nan)


# ----- linear recursion -----------------------------------------------------------------------------
def plot_linear(responses) -> "object":
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for i, r in enumerate(responses):
        color = f"C{i}"
        t = np.arange(len(r.norms))
        ax.semilogy(t, _positive(r.norms), color=color, lw=2,
                    label=f"{r.label}: measured ||h(t)||")
        ax.semilogy(t, _positive(r.prediction), color=color, ls="--", lw=1,
                    label=f"{r.label}: $c\\,|\\lambda_{{max}}|^t$")
    ax.set_title("Linear recursion h(t) = W h(t-1) + C x(t)\n"
                 "response to a single input at t = 0; dashed: the eigenvalue law")
    ax.set_xlabel("time step t")
    ax.set_ylabel("||h(t)|| (log scale)")
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return fig


# ----- nonlinear recursions -------------------------------------------------------------------------
def plot_saturation(sweep: dict, shown_ws=(0.5, 1.0, 1.5, 3.0)) -> "object":
    """Trajectories h(t) for a few w, and settle time / memory over w, per activation."""
    plt = _plt()
    acts = list(sweep)
    fig, axes = plt.subplots(2, len(acts), figsize=(4.2 * len(acts), 7.0), layout="constrained",
                             squeeze=False)
    for j, a in enumerate(acts):
        ax = axes[0, j]
        runs = {r.w: r for r in sweep[a]}
        for w in shown_ws:
            r = runs.get(w) or min(sweep[a], key=lambda r: abs(r.w - w))
            values = np.asarray(r.values, dtype=float)
            values = np.where(np.abs(values) > 1e3, np.nan, values)
            ax.plot(np.arange(len(values)), values, lw=1.8, label=f"w = {r.w:g}")
        ax.set_title(f"{a}: h(t) = {a}(w h(t-1) + x(t)), x(0) = 1")
        ax.set_xlabel("time step t")
        ax.set_ylabel("h(t)")
        ax.set_ylim(-1.2 if a == "tanh" else -0.1, 3.0 if a == "relu" else 1.2)
        ax.legend(fontsize=8, title="recurrent weight")
        ax.grid(alpha=0.3)
    ax = axes[1, 0]
    for a in acts:
        ws = [r.w for r in sweep[a]]
        ax.plot(ws, [r.memory for r in sweep[a]], color=COLORS.get(a), lw=2, label=a)
    ax.set_title("Memory: steps while |dh(t)/dx(0)| > 1% of its start")
    ax.set_xlabel("recurrent weight w")
    ax.set_ylabel("memory (steps)")
    ax.legend()
    ax.grid(alpha=0.3)
    ax = axes[1, 1] if len(acts) > 1 else axes[1, 0]
    for a in acts:
        ws = [r.w for r in sweep[a]]
        settle = [np.nan if r.settle_step is None else r.settle_step for r in sweep[a]]
        blow = [np.nan if r.blowup_step is None else r.blowup_step for r in sweep[a]]
        ax.plot(ws, settle, color=COLORS.get(a), lw=2, label=f"{a}: steps to saturate")
        if not np.all(np.isnan(blow)):
            ax.plot(ws, blow, color=COLORS.get(a), lw=2, ls=":", label=f"{a}: steps to |h| > 1e6")
    ax.set_title("Saturation and blow-up over w")
    ax.set_xlabel("recurrent weight w")
    ax.set_ylabel("time step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if len(acts) > 2:
        ax = axes[1, 2]
        for a in acts:
            ws = [r.w for r in sweep[a]]
            final = [np.nan if r.blowup_step is not None else abs(r.values[-1])
                     for r in sweep[a]]
            ax.plot(ws, final, color=COLORS.get(a), lw=2, label=a)
        ax.set_title("Value reached |h(T)| over w (no blow-up)")
        ax.set_xlabel("recurrent weight w")
        ax.set_ylabel("|h(T)|")
        ax.set_ylim(-0.1, 3.0)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[1, 3:]:
        ax.axis("off")
    return fig


def plot_vector_memory(runs) -> "object":
    """||dh(t)/dx(0)|| over t for each activation and spectral radius."""
    plt = _plt()
    given = list(dict.fromkeys(r.activation for r in runs))     # known ones in COLORS order
    acts = sorted(given, key=lambda a: (list(COLORS).index(a) if a in COLORS else len(COLORS),
                                        given.index(a)))
    fig, axes = plt.subplots(1, len(acts), figsize=(4.2 * len(acts), 3.8), layout="constrained",
                             sharey=True)
    axes = np.atleast_1d(axes)
    for ax, a in zip(axes, acts):
        for r in (r for r in runs if r.activation == a):
            T = len(r.jacobian_norms) - 1
            memory = f"{r.memory}" if r.memory < T else f"$\\geq${T}"
            ax.semilogy(_positive(r.jacobian_norms), lw=1.8,
                        label=f"$\\rho(W)$ = {r.rho:.2g} (memory {memory} steps)")
        ax.set_title(f"{a} units")
        ax.set_xlabel("time step t")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("||dh(t)/dx(0)|| (log scale)")
    fig.suptitle("How long h(t) = f(W h(t-1) + C x(t)) remembers x(0)")
    return fig


# ----- Jacobian chains ------------------------------------------------------------------------------
def plot_jacobians(chains) -> "object":
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11.5, 4.3), layout="constrained")
    for i, c in enumerate(chains):
        color = f"C{i}"
        if c.cec_norms is not None:
            ax.semilogy(c.ks, _positive(c.cec_norms), color=color, lw=2.2,
                        label=f"{c.cell}: CEC path ||dC_t/dC_(t-k)|| (h fixed)")
            ax.semilogy(c.ks, _positive(c.norms), color=color, lw=1, ls="--",
                        label=f"{c.cell}: all paths ||d{c.of}_t/d{c.wrt}_(t-k)||")
        else:
            ax.semilogy(c.ks, _positive(c.norms), color=color, lw=2,
                        label=f"{c.cell}: ||d{c.of}_t/d{c.wrt}_(t-k)||")
    ax.set_title("Jacobian chain: spectral norm over k steps back")
    ax.set_xlabel("steps back k")
    ax.set_ylabel("spectral norm (log scale)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    first = next((c for c in chains if c.cec_norms is None), chains[0])
    sv = np.array(first.singular_values)
    for j in range(sv.shape[1]):
        ax2.semilogy(first.ks, _positive(sv[:, j]), lw=1.2, color="C0",
                     alpha=1.0 - 0.8 * j / max(1, sv.shape[1] - 1),
                     label="largest" if j == 0 else ("smallest" if j == sv.shape[1] - 1
                                                     else None))
    ax2.set_title(f"{first.cell}: all singular values of d{first.of}_t/d{first.wrt}_(t-k)")
    ax2.set_xlabel("steps back k")
    ax2.set_ylabel("singular value (log scale)")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    return fig


# ----- error flow -----------------------------------------------------------------------------------
def plot_errorflow(check) -> "object":
    plt = _plt()
    acts = list(check.flow_by_scale)
    fig, axes = plt.subplots(1, 1 + len(acts), figsize=(4.0 * (1 + len(acts)), 3.9),
                             layout="constrained")
    ax = axes[0]
    ax.semilogy(check.qs, _positive(np.abs(check.bptt)), "o-", lw=2, ms=7, color="tab:blue",
                label="BPTT recursion")
    ax.semilogy(check.qs, _positive(np.abs(check.path_sums)), "x", ms=10, mew=2,
                color="tab:red", label="sum over paths")
    ax.set_title(f"Hochreiter's path sum = BPTT\n(max |difference| {check.max_abs_diff:.1e})")
    ax.set_xlabel("steps back q")
    ax.set_ylabel(f"|d theta_{check.v}(t-q) / d theta_{check.u}(t)|")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for ax, a in zip(axes[1:], acts):
        for s, values in check.flow_by_scale[a].items():
            ax.semilogy(check.flow_qs, _positive(values), lw=1.8, label=f"weights x {s:g}")
        ax.set_title(f"{a} units: error flow over q")
        ax.set_xlabel("steps back q")
        ax.set_ylabel("max |d theta_v(t-q) / d theta_u(t)|")
        ax.legend(fontsize=7, title="weight scale")
        ax.grid(alpha=0.3)
    return fig


# ----- truncated BPTT -------------------------------------------------------------------------------
def plot_truncation(effects) -> "object":
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11.5, 4.3), layout="constrained")
    for i, e in enumerate(effects):
        ax.semilogy(e.lags, _positive(e.input_grad_norms), lw=2, color=f"C{i}",
                    label=f"{e.cell}: full BPTT")
        t97 = e.extra.get("truncated_1997")
        if t97:
            ax.semilogy(e.lags, _positive(t97["input_grad_norm"]), lw=1.2, ls="--",
                        color=f"C{i}", label=f"{e.cell}: 1997 truncation (CEC only)")
    for k in effects[0].k2s:
        ax.axvline(k - 0.5, color="k", lw=0.6, alpha=0.4)
        ax.text(k - 0.5, 1.0, f" k2={k}", rotation=90, va="top", ha="right", fontsize=7,
                transform=ax.get_xaxis_transform(), alpha=0.7)
    ax.set_title(f"Long-lag task (loss at step T only): gradient per input\n"
                 "vertical lines: what truncation at k2 keeps (lag < k2)")
    ax.set_xlabel("lag T - 1 - s")
    ax.set_ylabel("||dL/dx_s|| (log scale)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for i, e in enumerate(effects):
        ax2.semilogy(e.k2s, _positive(e.rel_error), "o-", lw=2, color=f"C{i}", label=e.cell)
    ax2.set_title("Truncated BPTT(k1 = T, k2): parameter gradient error")
    ax2.set_xlabel("k2 (steps back-propagated)")
    ax2.set_ylabel("||g_k2 - g|| / ||g|| (log scale)")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    return fig
