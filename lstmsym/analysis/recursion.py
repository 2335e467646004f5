"""The recursions of seed 001, measured: linear h(t) = W h(t-1) + C x(t) and its nonlinear kin.

Seed 001 ("Analyzing Recursion"): it is enough to look at the response to a single input at
t = 0, h_0(t) = W^t C x(0). "For large t the length of the hidden vector will expand or
contract according to the t-th power of the largest eigenvalue": ``linear_response`` measures
||h(t)|| and its growth rate and sets them against |lambda_max|^t.

``scalar_recursion`` and ``vector_recursion`` do the same with h(t) = f(w h(t-1) + c x(t) + b)
for f = sigmoid, tanh, ReLU, and measure what the seed asserts in words: how fast the response
saturates or blows up as a function of w, and how long it remembers x(0) (the number of steps
for which dh(t)/dx(0) stays above a fraction of its first value).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmsym.analysis.evaluate import activation, spectral_radius, with_spectral_radius
from lstmsym.errors import LstmsymError

BLOWUP = 1e6          # |h| beyond this counts as blown up
MEMORY_FRACTION = 1e-2  # memory lasts while |dh(t)/dx(0)| >= this fraction of |dh(0)/dx(0)|


class MatrixError(LstmsymError):
    """A matrix unusable for the recursion (not square, not finite, wrong size)."""


def check_square(W, name: str = "W") -> np.ndarray:
    """``W`` as a float matrix, or MatrixError saying why it cannot be a recurrent matrix."""
    W = np.asarray(W, dtype=float)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        shape = "x".join(map(str, W.shape)) or "a scalar"
        raise MatrixError(f"the recurrent matrix {name} must be square, got shape {shape}")
    if W.shape[0] == 0:
        raise MatrixError(f"the recurrent matrix {name} is empty")
    if not np.all(np.isfinite(W)):
        raise MatrixError(f"the recurrent matrix {name} has non-finite entries")
    return W


def parse_matrix(text: str) -> np.ndarray:
    """A matrix written as rows separated by ';' and entries by ',' or spaces: "0.9,0.2;0,0.5".

    Only numbers are read (float()); nothing is evaluated.
    """
    rows = [r for r in text.replace("[", "").replace("]", "").split(";") if r.strip()]
    try:
        data = [[float(v) for v in r.replace(",", " ").split()] for r in rows]
    except ValueError as exc:
        raise MatrixError(f"cannot read matrix {text!r}: {exc}") from None
    if not data or len({len(r) for r in data}) != 1:
        raise MatrixError(f"cannot read matrix {text!r}: rows of different lengths")
    return np.array(data)


def check_input(C, x0, H: int) -> tuple:
    """(C, x(0)) for an H x H recurrence: C the identity and x(0) all ones when None, else
    checked (C with H rows, x(0) with one entry per column of C)."""
    C = np.eye(H) if C is None else np.asarray(C, dtype=float)
    if C.ndim != 2 or C.shape[0] != H:
        raise MatrixError(f"C must have {H} rows to feed a {H}x{H} recurrence, got shape "
                          f"{'x'.join(map(str, C.shape))}")
    x0 = np.ones(C.shape[1]) if x0 is None else np.asarray(x0, dtype=float).ravel()
    if x0.shape[0] != C.shape[1]:
        raise MatrixError(f"x(0) has {x0.shape[0]} entries, C has {C.shape[1]} columns")
    return C, x0


def check_steps(steps: int, name: str = "steps") -> int:
    if int(steps) != steps or steps < 1:
        raise LstmsymError(f"{name} = {steps}: must be a positive whole number")
    return int(steps)


# ----- linear recursion ----------------------------------------------------------------------------
@dataclass
class LinearResponse:
    """h(t) = W^t C x(0) for t = 0..T, with the eigenvalue prediction.

    Attributes:
        norms: ||h(t)||; prediction: ||h(T)|| * rho^(t-T), the eigenvalue law anchored at
        the last step (early on the other eigen-directions still add to ||h||);
        rho: spectral radius of W;
        growth_rate: measured (||h(T)|| / ||h(T/2)||)^(1/(T - T/2)), which tends to rho.
    """

    label: str
    rho: float
    norms: list
    prediction: list
    growth_rate: float
    eigenvalues: list

    def to_dict(self) -> dict:
        return {"label": self.label, "spectral_radius": self.rho, "growth_rate": self.growth_rate,
                "norm": self.norms, "prediction": self.prediction,
                "eigenvalue_moduli": self.eigenvalues}


def linear_response(W, C=None, x0=None, steps: int = 60, label: str = "") -> LinearResponse:
    """Response of h(t) = W h(t-1) + C x(t) to one input x(0) at t = 0 (x(t) = 0 after).

    Arguments:
        W: (H, H) recurrent matrix. C: (H, I) input matrix (identity when None).
        x0: (I,) input at t = 0 (all ones when None). steps: T.

    >>> r = linear_response([[0.5, 0.0], [0.0, 0.25]], steps=3)
    >>> [round(v, 4) for v in r.norms]   # ||(0.5^t, 0.25^t)||
    [1.4142, 0.559, 0.2577, 0.126]
    """
    W = check_square(W)
    steps = check_steps(steps)
    C, x0 = check_input(C, x0, W.shape[0])
    h = C @ x0
    norms = [float(np.linalg.norm(h))]
    for _ in range(steps):
        h = W @ h
        norms.append(float(np.linalg.norm(h)))
    rho = spectral_radius(W)
    if rho > 0.0:
        prediction = [norms[-1] * rho ** (t - steps) for t in range(steps + 1)]
    else:                    # nilpotent W: rho^(t-T) is undefined before T
        prediction = [float("nan")] * steps + [norms[-1]]
    half = steps // 2
    if norms[half] > 0 and norms[-1] > 0:
        growth = (norms[-1] / norms[half]) ** (1.0 / (steps - half))
    else:
        growth = 0.0
    moduli = sorted((float(abs(v)) for v in np.linalg.eigvals(W)), reverse=True)
    return LinearResponse(label or f"rho = {rho:.3g}", rho, norms, prediction, float(growth),
                          moduli)


def demo_matrices(size: int = 8, radii=(0.9, 1.0, 1.1), seed: int = 0) -> list:
    """One random (size x size) matrix rescaled to each spectral radius: [(label, W)]."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((size, size)) / np.sqrt(size)
    return [(f"spectral radius {r:g}", with_spectral_radius(base, r)) for r in radii]


# ----- nonlinear scalar recursion ------------------------------------------------------------------
@dataclass
class ScalarRun:
    """h(t) = f(w h(t-1) + c x(t) + b), x(0) = x0, x(t > 0) = 0, h(-1) = 0.

    Attributes:
        values: h(0..T); sensitivity: dh(t)/dx(0); settle_step: first t from which |h| stays
        within 1e-3 of |h(T)| (None if it never settles or blows up); blowup_step: first t with
        |h| > 1e6 (None if never); memory: steps for which |dh(t)/dx(0)| stays above 1% of
        |dh(0)/dx(0)| (T if it never drops).
    """

    activation: str
    w: float
    values: list
    sensitivity: list
    settle_step: int | None
    blowup_step: int | None
    memory: int

    def to_dict(self) -> dict:
        return {"activation": self.activation, "w": self.w, "h": self.values,
                "dh_dx0": self.sensitivity, "settle_step": self.settle_step,
                "blowup_step": self.blowup_step, "memory": self.memory}


def scalar_recursion(act: str, w: float, steps: int = 50, c: float = 1.0, b: float = 0.0,
                     x0: float = 1.0) -> ScalarRun:
    """Run the scalar recursion of seed 001 and measure saturation, blow-up and memory.

    >>> r = scalar_recursion("relu", 2.0, steps=3)
    >>> r.values, r.memory
    ([1.0, 2.0, 4.0, 8.0], 3)
    """
    f, fprime = activation(act)
    steps = check_steps(steps)
    h, s = 0.0, None
    values, sens = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            z = w * h + (c * x0 if t == 0 else 0.0) + b
            d = float(fprime(np.float64(z)))
            s = d * c if t == 0 else d * w * s       # chain rule through the recursion
            h = float(f(np.float64(z)))
            values.append(h)
            sens.append(float(s))
    return ScalarRun(act, float(w), values, sens, _settle(values), _blowup(values),
                     _memory(sens))


def _blowup(values) -> int | None:
    for t, v in enumerate(values):
        if not np.isfinite(v) or abs(v) > BLOWUP:
            return t
    return None


def _settle(values, tol: float = 1e-3) -> int | None:
    if _blowup(values) is not None:
        return None
    values = [abs(v) for v in values]      # a sign flip every step (w < 0) still saturates
    final = values[-1]
    if abs(values[-1] - values[-2]) > tol * 1e-2 * max(1.0, abs(final)):
        return None                          # still moving at the end: not settled
    t = len(values) - 1
    while t > 0 and abs(values[t - 1] - final) <= tol * max(1.0, abs(final)):
        t -= 1
    return t


def _memory(sens) -> int:
    first = abs(sens[0])
    if first == 0.0:
        return 0
    for t, s in enumerate(sens):
        if not np.isfinite(s):
            return t
        if abs(s) < MEMORY_FRACTION * first:
            return t
    return len(sens) - 1


def saturation_sweep(activations=("sigmoid", "tanh", "relu"), ws=None, steps: int = 50,
                     b: float = 0.0) -> dict:
    """``scalar_recursion`` for each activation over a grid of w: {activation: [ScalarRun]}."""
    ws = np.round(np.linspace(-3.0, 3.0, 61), 6) if ws is None else ws
    return {a: [scalar_recursion(a, float(w), steps=steps, b=b) for w in ws]
            for a in activations}


# ----- nonlinear vector recursion ------------------------------------------------------------------
@dataclass
class VectorRun:
    """h(t) = f(W h(t-1) + C x(t)), one input at t = 0; norms of h and of dh(t)/dx(0)."""

    activation: str
    rho: float
    norms: list
    jacobian_norms: list
    memory: int
    blowup_step: int | None

    def to_dict(self) -> dict:
        return {"activation": self.activation, "spectral_radius": self.rho, "norm": self.norms,
                "dh_dx0_norm": self.jacobian_norms, "memory": self.memory,
                "blowup_step": self.blowup_step}


def vector_recursion(act: str, W, C=None, x0=None, steps: int = 50) -> VectorRun:
    """The vector recursion with activation ``act``; dh(t)/dx(0) by the chain rule."""
    f, fprime = activation(act)
    W = check_square(W)
    steps = check_steps(steps)
    H = W.shape[0]
    C, x0 = check_input(C, x0, H)
    norms, jnorms = [], []
    h = np.zeros(H)
    J = None
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            z = W @ h + (C @ x0 if t == 0 else 0.0)
            D = fprime(z)
            J = D[:, None] * C if t == 0 else D[:, None] * (W @ J)
            h = f(z)
            norms.append(float(np.linalg.norm(h)))
            jnorms.append(float(np.linalg.norm(J, 2)) if np.all(np.isfinite(J)) else np.inf)
    return VectorRun(act, spectral_radius(W), norms, jnorms, _memory(jnorms), _blowup(norms))
