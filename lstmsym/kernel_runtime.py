"""The helper functions every generated kernel carries, as real (tested) Python.

codegen.py copies these functions verbatim (``inspect.getsource``) into each kernel, so a kernel
imports nothing from lstmsym: only NumPy. They read the kernel's module constants ``PARAMS``,
``STATES`` and ``DIMS``. ``parse_truncate`` and ``windows`` follow lstmsym/schedule.py (a test
checks they agree) but raise ``ValueError``, the only error type a kernel raises.
"""
from __future__ import annotations

import sys

import numpy as np

PARAMS: dict = {}
STATES: tuple = ()
DIMS: dict = {}
INIT: dict = {}
DTYPE = np.float64


def init_params(input_size, hidden_size, seed=0, dtype=DTYPE):
    """Parameters drawn uniformly from [-1/sqrt(H), 1/sqrt(H)], constants from INIT.

    Returns a dict name -> array with the shapes of PARAMS ("I" = input_size, "H" =
    hidden_size). The same seed gives the same parameters.
    """
    sizes = sizes_of(input_size, hidden_size)
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(sizes["H"])
    params = {}
    for name, dims in PARAMS.items():
        shape = tuple(sizes[d] for d in dims)
        if name in INIT:
            params[name] = np.full(shape, INIT[name], dtype=dtype)
        else:
            params[name] = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return params


def sigmoid(z, out=None):
    """Logistic sigmoid as 0.5 (1 + tanh(z / 2)): no overflow for any z, NaN stays NaN."""
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def block_sum(v, k):
    """Sum of each run of k consecutive entries along the last axis."""
    return v.reshape(v.shape[:-1] + (v.shape[-1] // k, k)).sum(axis=-1)


def blocks(v, k):
    """A (B, n) array seen as (B, n // k, k) blocks: always a view of the same memory."""
    s0, s1 = v.strides
    return np.lib.stride_tricks.as_strided(v, (v.shape[0], v.shape[1] // k, k), (s0, k * s1, s1))


def outer_sum(g, v):
    """sum over time and batch of g v^T, for (T, B, m) and (T, B, n) arrays: one GEMM."""
    return g.reshape(-1, g.shape[-1]).T @ v.reshape(-1, v.shape[-1])


def seq_matmul(v, w):
    """v @ w for a (T, B, n) array and an (n, m) matrix, as one GEMM over all timesteps."""
    out = empty_seq(v.shape[:-1] + (w.shape[-1],), np.result_type(v, w))
    np.matmul(v.reshape(-1, v.shape[-1]), w, out=out.reshape(-1, w.shape[-1]))
    return out


def transposed(w, rows=64):
    """w.T as a new C-contiguous array, so that a step's product v @ w.T reads its matrix in
    memory order (OpenBLAS float32: 20-30 % faster per step at H = 128-512). Copied in blocks
    of rows: a plain copy of the transposed view thrashes the cache (7 ms against 1 ms for a
    2048 x 512 matrix)."""
    out = np.empty((w.shape[1], w.shape[0]), dtype=w.dtype)
    for r in range(0, w.shape[0], rows):
        out[:, r:r + rows] = w[r:r + rows].T
    return out


SPARE = []          # arrays made by empty_seq, reused once nothing else references them
SPARE_MAX = 16


def empty_seq(shape, dtype):
    """np.empty(shape, dtype) for the arrays over all timesteps, reusing the memory of an
    earlier call's array that nothing references any more (its cache and outputs dropped):
    fresh memory costs a page fault per 4 KiB, as much time as a step's arithmetic.

    An array is taken out of SPARE before its references are counted, so two threads never
    get the same one; a reused array is exactly as undefined as np.empty's.
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    probe = [np.empty(0)]
    b = probe.pop()
    free = sys.getrefcount(b)               # the count of an array only a local name holds
    for _ in range(len(SPARE)):
        try:
            a = SPARE.pop(0)
        except IndexError:
            break
        if sys.getrefcount(a) == free:      # only the name a holds it
            if a.shape == shape and a.dtype == dtype:
                SPARE.append(a)
                return a
            if len(SPARE) >= SPARE_MAX - 1:
                continue                    # unused and of another shape: let it go
        SPARE.append(a)
    a = np.empty(shape, dtype)
    if len(SPARE) < SPARE_MAX:
        SPARE.append(a)
    return a


def sizes_of(input_size, hidden_size):
    """Every dimension name of PARAMS -> its size."""
    sizes = {"I": int(input_size), "H": int(hidden_size)}
    for name, (base, factor) in DIMS.items():
        if sizes[base] % factor:
            raise ValueError(f"{base} = {sizes[base]} must be a multiple of {factor} "
                             f"(dimension {name} = {base} / {factor})")
        sizes[name] = sizes[base] // factor
    return sizes


def check_array(name, a, shape, dtype=None):
    """Raise ValueError naming the array unless it is an ndarray of that shape and dtype."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of shape {shape}, "
                         f"got {type(a).__name__}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}, expected {tuple(shape)}")
    if dtype is not None and a.dtype != dtype:
        raise ValueError(f"{name} has dtype {a.dtype}, expected {np.dtype(dtype).name} "
                         f"(shape {tuple(shape)})")


def check_inputs(params, x, state0):
    """Validate forward's arguments; return (T, B, sizes)."""
    if not isinstance(x, np.ndarray) or x.ndim != 3:
        raise ValueError("x must be a numpy array of shape (T, B, I), got "
                         + (f"shape {x.shape}" if isinstance(x, np.ndarray)
                            else type(x).__name__))
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"x has dtype {x.dtype}, expected float32 or float64 (shape (T, B, I))")
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict of arrays with keys {list(PARAMS)}")
    missing = [k for k in PARAMS if k not in params]
    if missing:
        raise ValueError(f"params is missing {missing[0]!r} (shape {PARAMS[missing[0]]})")
    unknown = [k for k in params if k not in PARAMS]
    if unknown:
        raise ValueError(f"params has an unknown entry {unknown[0]!r}; expected {list(PARAMS)}")
    T, B, input_size = x.shape
    # H: the size most parameters agree on, so that the odd one out is the one named
    votes = [params[name].shape[k] for name, shape in PARAMS.items() for k, d in enumerate(shape)
             if d == "H" and isinstance(params[name], np.ndarray)
             and params[name].ndim == len(shape)]
    if not votes:
        raise ValueError("params: cannot read the hidden size H; expected shapes "
                         + ", ".join(f"{k} {v}" for k, v in PARAMS.items()))
    hidden_size = max(votes, key=votes.count)
    sizes = sizes_of(input_size, hidden_size)
    for name, shape in PARAMS.items():
        check_array(f"params[{name!r}]", params[name], tuple(sizes[d] for d in shape), x.dtype)
    if state0 is not None:
        if not isinstance(state0, dict):
            raise ValueError(f"state0 must be None or a dict with keys {list(STATES)}")
        for name in state0:
            if name not in STATES:
                raise ValueError(f"state0 has an unknown entry {name!r}; states: {list(STATES)}")
    return T, B, sizes


def parse_truncate(truncate, T):
    """None (full BPTT), "1997", or (k1, k2) from None, "1997", k or (k1, k2)."""
    if truncate is None or truncate == "none":
        return None
    if isinstance(truncate, str) and truncate == "1997":
        return "1997"
    if isinstance(truncate, (bool, str, float)):
        raise ValueError(f"truncate={truncate!r}: use None, k, (k1, k2) or '1997'")
    if isinstance(truncate, (int, np.integer)):
        k1 = k2 = int(truncate)
    else:
        try:
            k1, k2 = truncate
        except (TypeError, ValueError):
            raise ValueError(f"truncate={truncate!r}: use None, k, (k1, k2) or '1997'") from None
        if not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool)
                   for k in (k1, k2)):
            raise ValueError(f"truncate={truncate!r}: k1 and k2 must be integers")
        k1, k2 = int(k1), int(k2)
    if k1 < 1:
        raise ValueError(f"truncation k1 = {k1}: k1 must be at least 1")
    if k2 < 1:
        raise ValueError(f"truncation k2 = {k2}: k2 must be at least 1")
    if k1 > T:
        raise ValueError(f"truncation k1 = {k1} is longer than the sequence (T = {T})")
    return (k1, k2)


def windows(T, k1, k2):
    """Truncated BPTT(k1, k2): (end, loss_start, floor) of each backward pass (schedule.py)."""
    return [(min(start + k1, T) - 1, start, max(0, start + k1 - k2))
            for start in range(0, T, k1)]


HELPERS = (init_params, sigmoid, block_sum, blocks, outer_sum, seq_matmul, transposed, empty_seq,
           sizes_of, check_array, check_inputs, parse_truncate, windows)
