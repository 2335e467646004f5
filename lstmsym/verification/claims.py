"""Claims that are not LaTeX: a NumPy callable (checked numerically) or a SymPy matrix.

A callable receives the quantities of one step by their code names (lstmsym.naming: ``C``,
``C_prev``, ``f_next``, ``dC_next``, ``dh_out``, ``W_hf`` …; it declares the ones it needs as
parameters, or takes ``**values``) and returns ∇_{wrt}Div as an array. Values are consistent:
gates come from the forward equations, and gradients at t from those at t+1 through the
derivation. It is compared with the derivation at three random points (float64, rtol 1e-9);
on failure the result carries the point as a counterexample.

A SymPy matrix is written in the scalar symbols of lstmsym.verification.scalar (``C_t_0``,
``dC_tp1_1``, ``W_hf_0_1``, ``f_tp1_0`` …) at sizes of the user's choice and is compared
exactly, as LaTeX claims are.
"""
from __future__ import annotations

import difflib
import inspect
import random
import re
import time

import numpy as np
import sympy

from lstmsym.errors import LstmsymError
from lstmsym.expr import Grad, OutGrad, Sym, shift
from lstmsym.naming import code_name
from lstmsym.verification.result import VerifyResult
from lstmsym.verification.scalar import ScalarEnv, block_sizes, instantiate

NUMERIC_SIZES = {"H": 3, "I": 2}
TIMES = (-1, 0, 1)


def step_leaves(j) -> list:
    """Every quantity of steps t-1 .. t+1 a claim may use, free ones first."""
    cell = j.cell
    out = list(cell.params)
    for tau in (-2,) + TIMES:
        out += [x.at(tau) for x in cell.inputs]
        out += [s.at(tau) for s in cell.states]
    out += [OutGrad(s.at(tau)) for s in cell.states if s.name in j.d.outputs
            for tau in (-1, 0, 1)]
    out += [Grad(s.at(1)) for s in cell.states]
    out += [e.target.at(tau) for tau in TIMES for e in cell.equations
            if e.target.name not in j.states]
    out += [Grad(s.at(tau)) for s in cell.states for tau in (-1, 0)]
    return out


def bind(j, env: ScalarEnv, leaves) -> dict:
    """Values of every leaf in ``env``: free ones drawn, the others computed from them."""
    numeric = bool(env.values) and all(not m.free_symbols for m in env.values.values())
    for tau in sorted({e.time for e in leaves if isinstance(e, Sym) and e.role == "var"}):
        for eq in j.cell.equations:
            key = eq.target.at(tau)
            if eq.target.name not in j.states and key not in env.values:
                value = instantiate(shift(eq.expr, tau), env)
                env.values[key] = value.evalf(30) if numeric else value
    for leaf in leaves:
        if isinstance(leaf, Grad) and leaf.of.time <= 0:
            value = instantiate(j.basis(leaf), env)
            env.values[leaf] = value.evalf(30) if numeric else value
    return {leaf: env.leaf(leaf) for leaf in leaves}


def verify_callable(j, fn, seed: int, start: float) -> VerifyResult:
    leaves = step_leaves(j)
    names = {code_name(leaf): leaf for leaf in leaves}
    wanted = _wanted(fn, names)
    derived = j.derived()
    target = j.basis(derived)
    worst = 0.0
    sizes = block_sizes(j.cell, NUMERIC_SIZES)
    for attempt in range(3):
        rnd = random.Random(seed + attempt)
        env = ScalarEnv(sizes)
        for leaf in leaves:
            free = isinstance(leaf, OutGrad) or (isinstance(leaf, Grad) and leaf.of.time > 0) \
                or (isinstance(leaf, Sym) and leaf.role != "var")
            if free:
                shape = tuple(env.size(d) for d in leaf.shape)
                env.values[leaf] = sympy.Matrix(*(shape if len(shape) == 2 else (shape[0], 1)),
                                                lambda *ij: sympy.Rational(rnd.randint(-16, 16), 8))
        values = bind(j, env, leaves)
        arrays = {code_name(k): _array(v) for k, v in values.items()}
        want = _array(instantiate(target, env).evalf(30))
        try:
            got = np.asarray(fn(**{k: arrays[k].copy() for k in wanted}), dtype=np.float64)
        except Exception as exc:
            raise LstmsymError(f"the callable raised {type(exc).__name__}: {exc}") from None
        if got.shape != want.shape:
            raise LstmsymError(f"the callable returned shape {got.shape}; ∇ with respect to "
                               f"{j.wrt!r} has shape {want.shape} here ({sizes})")
        err = float(np.max(np.abs(got - want) / (1e-12 + np.abs(want) + 1.0)))
        worst = max(worst, err)
        if not np.allclose(got, want, rtol=1e-9, atol=1e-12):
            from lstmsym.printing.latex import latex
            shown = {latex(names[k]): arrays[k].tolist() for k in sorted(wanted)}
            r = VerifyResult(cell=j.cell.name, wrt=j.wrt, profile=j.profile.name,
                             convention=j.reader.convention, derived=derived,
                             sizes=dict(sizes), ok=False, method="numeric")
            r.counterexample = {"sizes": dict(sizes), "values": shown,
                                "claimed": got.tolist(), "derived": want.tolist()}
            r.note = "a callable is checked numerically: it differs at the values below"
            r.seconds = time.perf_counter() - start
            return r
    r = VerifyResult(cell=j.cell.name, wrt=j.wrt, profile=j.profile.name,
                     convention=j.reader.convention, derived=derived, sizes=dict(sizes),
                     ok=True, method=f"numeric: equal at 3 random points in float64 "
                                     f"({', '.join(f'{k} = {v}' for k, v in sizes.items())}"
                                     f"; largest relative difference {worst:.1e})")
    r.seconds = time.perf_counter() - start
    return r


def _wanted(fn, names: dict) -> list:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return sorted(names)
    params = sig.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return sorted(names)
    wanted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for w in wanted:
        if w not in names:
            close = difflib.get_close_matches(w, list(names), n=8, cutoff=0.0)
            raise LstmsymError(f"the callable asks for {w!r}, which this cell does not have; "
                               f"it can ask for (closest first): {', '.join(close)}, …")
    return wanted


def _array(m) -> np.ndarray:
    a = np.array(m.evalf(17).tolist(), dtype=np.float64)
    return a[:, 0] if a.shape[1] == 1 and m.cols == 1 else a


def verify_sympy(j, claimed, start: float) -> VerifyResult:
    """Exact comparison of a SymPy matrix written in lstmsym's scalar symbols."""
    m = claimed if isinstance(claimed, sympy.MatrixBase) else sympy.Matrix([[claimed]])
    derived = j.derived()
    sizes = _sizes(j, m)
    env = ScalarEnv(sizes)
    leaves = step_leaves(j)
    bind(j, env, leaves)
    by_name = {}
    computed = {}
    for leaf in leaves:
        value = env.leaf(leaf)
        fresh = env.fresh(leaf)
        for sym, val in zip(fresh, value):
            by_name[sym.name] = val
            if sym != val:
                computed[sym.name] = val
    unknown = sorted(s.name for s in m.free_symbols if s.name not in by_name)
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(by_name), n=8, cutoff=0.0)
        raise LstmsymError(f"unknown symbol {unknown[0]!r} in the SymPy claim; lstmsym's "
                           f"scalar symbols at these sizes include: {', '.join(close)}")
    a = m.xreplace({s: by_name[s.name] for s in m.free_symbols})
    b = instantiate(j.basis(derived), env)
    if a.shape != b.shape:
        raise LstmsymError(f"the SymPy claim has shape {a.shape}; the gradient has {b.shape} "
                           f"at {sizes}")
    ok = all(sympy.expand(x) == 0 for x in (a - b))
    r = VerifyResult(cell=j.cell.name, wrt=j.wrt, profile=j.profile.name,
                     convention=j.reader.convention, derived=derived, sizes=sizes, ok=ok)
    if not ok:
        from lstmsym.verification.judge import counterexample
        r.counterexample = counterexample(j, env, a, b, [derived], 0)
        r.note = "a SymPy claim is compared entrywise; terms are named for LaTeX claims only"
    r.seconds = time.perf_counter() - start
    return r


def _sizes(j, m) -> dict:
    sizes = {"H": 2, "I": 2}
    if len(j.wrt.shape) >= 1 and isinstance(j.wrt.shape[0], str):
        sizes[j.wrt.shape[0]] = m.rows
    if len(j.wrt.shape) == 2 and isinstance(j.wrt.shape[1], str):
        sizes[j.wrt.shape[1]] = m.cols
    # the input size, if the claim shows it: x_t_k or W_x*_i_j
    ks = [int(g) + 1 for s in m.free_symbols
          for g in re.findall(r"^x_t[mp]?\d?_(\d+)$|^W_x\w*_\d+_(\d+)$", s.name)[0:1]
          for g in g if g]
    if ks and j.wrt.shape != ("I",):
        sizes["I"] = max(ks)
    for dim, (base, k) in j.cell.dims.items():      # memory-cell blocks: base = k * dim
        if dim in sizes:
            sizes[base] = sizes[dim] * k
        elif sizes[base] % k:
            raise LstmsymError(f"the claim has {sizes[base]} rows, but {base} is a multiple of "
                               f"the {k} cells of a block in cell {j.cell.name!r}")
        else:
            sizes[dim] = sizes[base] // k
    return sizes


__all__ = ["verify_callable", "verify_sympy"]
