"""The gradient check: the generated kernel's backward against central differences, in float64.

The reference is independent of the kernel: ``reference_forward`` interprets the cell's own
equations over a sequence (the vector-level tree, evaluated by lstmsym.numeval on batch-major
arrays, activations computed from their own SymPy expressions; numeval reads nothing of the
generated kernels), and the losses whose finite differences are taken encode each
backward mode by what is held constant, never by anything the kernel's backward computes:

- full BPTT: the plain forward pass;
- truncated BPTT(k1, k2): for each backward pass of lstmsym.schedule.windows, a forward pass
  that starts at the pass's floor from the (constant) state the full run reached there and
  scores the outputs of the pass's steps; the gradient is the sum over passes;
- the 1997 truncation: a forward pass in which every previous state entering a net input
  (an equation that is some gate's or cell's pre-activation) is a constant, the value of the
  unperturbed run, while the constant error carousel sees the live state.

Directions are random (one per parameter, one for x, one per initial state); the derivative
along v is the fourth-order central difference (8 (L(+e) - L(-e)) - (L(+2e) - L(-2e))) / 12e,
taken with e = s, s/10, s/100 (s = 1e-3 min(1, magnitude)), keeping the best: large steps see
curvature and cross ReLU kinks, small ones see rounding; a right gradient matches at some step,
a wrong one at none. The error is |fd - <grad, v>| / max(|fd|, |<grad, v>|, 1e-6 (|L| + 1)):
derivatives far below the loss L (saturated units) are below what differences resolve.
"""
from __future__ import annotations

import time

import numpy as np

from lstmsym.cells import get_cell
from lstmsym.errors import LstmsymError
from lstmsym.numeval import BatchFirst, scalar_eval
from lstmsym.schedule import parse_truncate, windows
from lstmsym.verification.report import Verdict

TOLERANCE = 1e-6
EPS = 1e-3
DEFAULT_CONFIGS = ((1, 1, 2, 2), (4, 2, 3, 4), (7, 3, 2, 6))   # (T, B, I, H)
DEFAULT_TRUNCATIONS = (None, 2, (2, 3), (3, 1), "1997")


# ----- the reference forward pass: the cell's equations interpreted -----------------------
class _Forward(BatchFirst):
    """lstmsym.numeval on batch-major arrays, leaves read by (name, time); forward nodes only."""

    def leaf(self, e):
        key = (e.name, 0 if e.role == "param" else e.time)
        try:
            return self.values[key]
        except KeyError:
            raise LstmsymError(f"gradcheck: no value for {e!r}") from None

    def _eval_Grad(self, e):
        raise LstmsymError(f"a forward equation holds a gradient ({e!r})")

    _eval_OutGrad = _eval_Grad

    def _eval_ActDeriv(self, e):
        raise LstmsymError("a forward equation holds a derivative")


def evaluate(e, env: dict):
    """A vector-level expression on batch-major arrays; ``env`` maps (name, time) -> array.

    Parameters are read at time 0; vectors are (B, n) arrays, parameter vectors may be (n,).
    """
    return _Forward(env)(e)


def reference_forward(cell, params, x, state0, frozen=None) -> dict:
    """Run the cell's equations over x (T, B, I); return state name -> (T, B, size).

    ``frozen`` (state name -> (T, B, size) values of S_{t-1} for t = 0..T-1) makes every
    pre-activation equation read the previous states as these constants.
    """
    cell = get_cell(cell)
    T = x.shape[0]
    prev = {s: state0[s] for s in cell.state_names}
    outs = {s: [] for s in cell.state_names}
    for t in range(T):
        env = {(p, 0): v for p, v in params.items()}
        env.update({(xs.name, 0): x[t] for xs in cell.inputs})
        env.update({(s, -1): prev[s] for s in cell.state_names})
        for eq in cell.equations:
            local = env
            if frozen is not None and eq.preact_of is not None:
                local = dict(env)
                local.update({(s, -1): frozen[s][t] for s in cell.state_names})
            env[(eq.target.name, 0)] = evaluate(eq.expr, local)
        for s in cell.state_names:
            prev[s] = env[(s, 0)]
            outs[s].append(prev[s])
    return {s: np.stack(v) for s, v in outs.items()}


def reference_loss(cell, mode, params, x, state0, d_out, d_final, base) -> float:
    """The scalar whose gradient each backward mode computes (see the module docstring).

    ``mode`` is None, "1997" or (k1, k2); ``base`` is the unperturbed run (state name ->
    (T, B, size), plus "__state0__": the unperturbed initial states), source of the constants.
    """
    T = x.shape[0]

    def score(outs, start, lo, hi):
        total = sum(float(np.sum(outs[s][lo - start:hi - start] * d_out[s][lo:hi]))
                    for s in d_out)
        if d_final and hi == T:
            total += sum(float(np.sum(outs[s][-1] * d_final[s])) for s in d_final)
        return total

    if mode is None:
        return score(reference_forward(cell, params, x, state0), 0, 0, T)
    if mode == "1997":
        frozen = {s: np.concatenate([base["__state0__"][s][None], base[s][:-1]])
                  for s in state0}
        return score(reference_forward(cell, params, x, state0, frozen), 0, 0, T)
    total = 0.0
    for w in windows(T, *mode):
        if w.floor > w.end:     # a short last chunk that k2 < k1 never reaches
            continue
        start = state0 if w.floor == 0 else {s: base[s][w.floor - 1] for s in state0}
        outs = reference_forward(cell, params, x[w.floor:w.end + 1], start)
        # outputs of steps below the floor send nothing back (schedule.py: no flow below it)
        total += score(outs, w.floor, max(w.loss_start, w.floor), w.end + 1)
    return total


def _rel(a: float, b: float, floor: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), floor)


def check_gradients(cell, kernel, T, B, I, H, truncate=None, seed=0, magnitude=1.0,
                    eps=EPS) -> dict:
    """Relative errors of the kernel's gradients against central differences of the reference.

    Returns name -> relative error for every parameter, "x" and "state0[<name>]", plus
    "forward" (max abs difference of the kernel's outputs from the reference forward).
    """
    cell = get_cell(cell)
    rng = np.random.default_rng(seed)
    params = kernel.init_params(I, H, seed=seed, dtype=np.float64)
    params = {k: v * magnitude * 2.0 + rng.normal(0.0, 0.1 * magnitude, v.shape)
              for k, v in params.items()}
    x = rng.normal(0.0, magnitude, (T, B, I))
    # every carried state has the hidden size H (the kernel contract's (B, H) states)
    state0 = {s: rng.normal(0.0, 0.5, (B, H)) for s in kernel.STATES}
    d_out = {s: rng.normal(0.0, 1.0, (T, B, H)) for s in kernel.STATES}
    d_final = {s: rng.normal(0.0, 1.0, (B, H)) for s in kernel.STATES}
    mode = parse_truncate(truncate, T)

    outputs, cache = kernel.forward(params, x, state0)
    base = reference_forward(cell, params, x, state0)
    errors = {"forward": max(float(np.max(np.abs(outputs[s] - base[s]))) for s in base)}
    base["__state0__"] = state0
    d_params, d_x, d_state0 = kernel.backward(params, cache, d_out, d_final, truncate=truncate)

    def loss(p=params, xx=x, s0=state0):
        return reference_loss(cell, mode, p, xx, s0, d_out, d_final, base)

    # below this size a directional derivative is finite-difference noise (saturated units)
    floor = 1e-6 * (abs(loss()) + 1.0)

    # no one step suits every case: large ones see curvature (and cross ReLU kinks, which are
    # denser at small magnitudes), small ones rounding noise; a right gradient matches at some
    # step, a wrong one at none
    small = eps * min(1.0, magnitude)
    steps = (small, small / 10, small / 100)

    def stencil(shift, e):
        # fourth-order central difference: truncation O(e^4), rounding O(u |L| / e)
        return (8 * (shift(e) - shift(-e)) - (shift(2 * e) - shift(-2 * e))) / (12 * e)

    def compare(shift, analytic):
        return min(_rel(stencil(shift, e), analytic, floor) for e in steps)

    for name, value in params.items():
        v = rng.normal(size=value.shape)
        errors[name] = compare(lambda e: loss(p={**params, name: value + e * v}),
                               float(np.sum(d_params[name] * v)))
    v = rng.normal(size=x.shape)
    errors["x"] = compare(lambda e: loss(xx=x + e * v), float(np.sum(d_x * v)))
    for s in kernel.STATES:
        v = rng.normal(size=state0[s].shape)
        errors[f"state0[{s}]"] = compare(lambda e: loss(s0={**state0, s: state0[s] + e * v}),
                                         float(np.sum(d_state0[s] * v)))
    return errors


def gradcheck(cell, seed=0, configs=DEFAULT_CONFIGS, truncations=DEFAULT_TRUNCATIONS,
              magnitude=1.0, tolerance=TOLERANCE, kernel=None, progress=None) -> list:
    """Check the generated kernel of ``cell`` by central differences; one Verdict per case.

    Arguments:
        cell: a cell name or ``Cell``.
        configs: (T, B, I, H) sizes to try (H is rounded up to a multiple of a block size).
        truncations: backward modes: None, k, (k1, k2), "1997" (those with k1 > T skipped).
        kernel: an already loaded kernel module (default: generate and import one).
        progress: optional callable(str) told about each case before it runs.
    """
    from lstmsym.codegen import load_kernel
    cell = get_cell(cell)
    kernel = kernel or load_kernel(cell)
    factor = max([f for _, f in cell.dims.values()] or [1])
    verdicts = []
    for T, B, I, H in configs:
        H = -(-H // factor) * factor
        for trunc in truncations:
            k1 = trunc if isinstance(trunc, int) else (trunc[0] if isinstance(trunc, tuple)
                                                       else 1)
            if k1 > T:
                continue
            label = f"gradcheck {cell.name} T={T} B={B} I={I} H={H} truncate={trunc}"
            if progress:
                progress(label)
            t0 = time.perf_counter()
            with np.errstate(all="raise"):
                errors = check_gradients(cell, kernel, T, B, I, H, trunc, seed, magnitude)
            fwd = errors.pop("forward")
            worst = max(errors, key=errors.get)
            ok = errors[worst] <= tolerance and fwd <= 1e-10
            verdicts.append(Verdict(label, ok, "finite-differences", time.perf_counter() - t0,
                                    f"max rel err {errors[worst]:.1e} ({worst}); forward "
                                    f"{fwd:.0e}"))
    return verdicts


__all__ = ["gradcheck", "check_gradients", "reference_forward", "reference_loss", "evaluate",
           "scalar_eval"]
