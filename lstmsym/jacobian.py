"""One-step state Jacobians from the derivation: the constant error carousel as a checked fact.

For carried states S and R of a cell, J = dS_t/dR_{t-1} with the inputs x_t, the parameters and
every other state at t-1 held fixed. Nothing is unrolled and no SymPy ``diff`` is taken: the
derivation (lstmsym.derive) already holds J^T u. What step t sends back to R_{t-1}
(``Derivation.carry[R]``) is a sum of terms in the gradients of quantities at t; substituting
the gradients of intermediates by their own terms (as ``Derivation.closed_form`` does) leaves the
gradients of the states at t. Each of those is the total gradient of that state *within the
step*: its seed (u for S_t, 0 for the others) plus what later equations of the same step pass
back to it (h_t = o_t tanh(C_t) passes u o o_t o tanh'(C_t) to C_t when S = h). Output
gradients and everything from step t+1 are zero, since they are not part of one step.

    vjp(cell, of, wrt)          -> (u, J^T u) as a vector expression
    diagonal(cell, of, wrt)     -> D when J = diag(D): Ones for lstm1997's dC_t/dC_{t-1}
                                   (the CEC, s_c(t) = s_c(t-1) + ...), f_t for the forget gate
    jacobian_latex(cell)        -> LaTeX align lines for every pair of states
    jacobian_matrix(...)        -> J as a NumPy array at given values

>>> from lstmsym.cells import get_cell
>>> diagonal(get_cell("lstm1997"), "C", "C")
1
>>> diagonal(get_cell("lstm"), "C", "C")
f[t]
"""
from __future__ import annotations

import numpy as np
import sympy

from lstmsym.cells import get_cell
from lstmsym.derive import derive
from lstmsym.errors import LstmsymError
from lstmsym.expr import (Add, BlockSum, Grad, Had, MatVec, Ones, Repeat, Scale, Sym, Zero, add, had,
                          map_children, scale, substitute)


# ----- J^T u from the derivation --------------------------------------------------------------------
def _cotangent(state: Sym) -> Sym:
    """The cotangent u on S_t (a constant of the step, printed as u)."""
    return Sym("u", "const", state.shape, 0, "u")


def _state(cell, name: str) -> Sym:
    try:
        return cell.state(name)
    except KeyError:
        raise LstmsymError(f"cell {cell.name!r} has no state {name!r}; its states are: "
                           + ", ".join(cell.state_names)) from None


def vjp(cell, of: str, wrt: str, truncation: str | None = None):
    """J^T u for J = d(of)_t / d(wrt)_{t-1}, from the derivation.

    Arguments:
        cell: a ``Cell`` or a registered name.
        of: the state at t (e.g. ``"C"``); wrt: the state at t-1 (e.g. ``"C"``).
        truncation: ``None`` or ``"1997"`` (the Jacobian of the truncated backward step: only
            the constant error carousel passes error back to t-1).

    Returns:
        ``(u, expr)``: the cotangent symbol u (shape of ``of``) and J^T u, a vector expression of
        the shape of ``wrt`` in u, parameters, x_t, states at t-1 and quantities at t.

    >>> from lstmsym.cells import get_cell
    >>> u, e = vjp(get_cell("lstm"), "C", "C")
    >>> e
    (u o f[t])
    """
    cell = get_cell(cell)
    S, R = _state(cell, of), _state(cell, wrt)
    d = derive(cell, outputs=(), truncation=truncation)
    u = _cotangent(S)
    stop = set(cell.state_names)
    total = {}          # Grad(state_t) -> its total gradient within the step, in u
    for v in d.order:   # reverse forward order: later states first
        if v.name not in stop:
            continue
        local = [t.expr for t in d.grads[v] if t.via is not None and t.via.time == 0]
        seed = u if v.name == of else Zero(v.shape)
        expr = d._expand(add(seed, *local), stop)
        total[Grad(v)] = substitute(expr, total) if total else expr
    carried = d._expand(add(Zero(R.shape), *(t.expr for t in d.carry[R.name])), stop)
    return u, _drop_zeros(substitute(carried, total))


def _drop_zeros(e):
    """Rebuild ``e`` so that a zero under a linear map (W^T 0, blocksum(0)) vanishes."""
    e = map_children(e, _drop_zeros)
    if isinstance(e, MatVec) and isinstance(e.vec, Zero):
        return Zero(e.shape)
    if isinstance(e, (Repeat, BlockSum)) and isinstance(e.arg, Zero):
        return Zero(e.shape)
    return e


# ----- diagonal Jacobians ------------------------------------------------------------------------------
def _diag_factor(e, u):
    """D with e = D o u, read off the structure of e; None if e is not of that form."""
    if e == u:
        return Ones(u.shape)
    if isinstance(e, Zero):
        return Zero(u.shape)
    if u not in e.syms():
        return None            # a term without u: not linear in u (cannot occur for J^T u)
    if isinstance(e, Add):
        parts = [_diag_factor(a, u) for a in e.args]
        return None if any(p is None for p in parts) else add(*parts)
    if isinstance(e, Scale):
        inner = _diag_factor(e.arg, u)
        return None if inner is None else scale(e.coeff, inner)
    if isinstance(e, Had):
        with_u = [a for a in e.args if u in a.syms()]
        if len(with_u) != 1:
            return None
        inner = _diag_factor(with_u[0], u)
        rest = [a for a in e.args if a is not with_u[0]]
        return None if inner is None else had(inner, *rest)
    return None                # u under a matrix, a block sum, ...: not visibly diagonal


def diagonal(cell, of: str, wrt: str, truncation: str | None = None):
    """The vector D with d(of)_t/d(wrt)_{t-1} = diag(D), or None if J is not diagonal.

    "Diagonal" is read off the structure of J^T u (a sum of Hadamard products with u); a
    Jacobian that only happens to be diagonal for special parameter values gives None.

    >>> from lstmsym.cells import get_cell
    >>> diagonal(get_cell("lstm1997-blocks"), "C", "C")
    1
    """
    u, e = vjp(cell, of, wrt, truncation)
    if get_cell(cell).state(of).shape != get_cell(cell).state(wrt).shape:
        return None
    return _diag_factor(e, u)


# ----- LaTeX ------------------------------------------------------------------------------------------
def jacobian_latex(cell, truncation: str | None = None, environment: bool = False) -> str:
    """LaTeX align lines, one per pair of states: diag(D) where J is diagonal, else J^T u.

    Lines are joined by ``\\\\``; with ``environment`` they are wrapped in ``align*``.
    """
    from lstmsym.naming import latex_name
    from lstmsym.printing.latex import latex

    cell = get_cell(cell)
    lines = []
    for S in cell.states:
        for R in cell.states:
            frac = r"\frac{\partial %s}{\partial %s}" % (latex_name(S), latex_name(R.prev))
            u, e = vjp(cell, S.name, R.name, truncation)
            D = _diag_factor(e, u) if S.shape == R.shape else None
            if isinstance(e, Zero):
                lines.append(f"{frac} &= 0")
            elif isinstance(D, Ones):
                lines.append(f"{frac} &= I")
            elif D is not None:
                lines.append(r"%s &= \operatorname{diag}\left(%s\right)" % (frac, latex(D)))
            else:
                lines.append(r"\left(%s\right)^{\top} %s &= %s" % (frac, latex(u), latex(e)))
    body = " \\\\\n".join(lines)
    if environment:
        return "\\begin{align*}\n" + body + "\n\\end{align*}"
    return body


# ----- numbers ----------------------------------------------------------------------------------------
def jacobian_matrix(cell, of: str, wrt: str, values: dict, sizes: dict,
                    truncation: str | None = None) -> np.ndarray:
    """J = d(of)_t/d(wrt)_{t-1} as a float64 array of shape (|of|, |wrt|) at given values.

    Arguments:
        cell: a ``Cell`` or a registered name.
        values: the point: parameters by name (``"W_hf"``), inputs by name (``"x"``), previous
            states by name + ``"_prev"`` (``"h_prev"``, ``"C_prev"``), or ``Sym`` keys; vectors
            as 1-D (or (n, 1)) arrays, matrices as 2-D arrays.
        sizes: ``{"H": ..., "I": ...}``; block dimensions (``"G"``) follow from ``cell.dims``.

    The forward step and J^T e_k are evaluated exactly with SymPy at these numbers (lstmsym.
    verification.scalar), then rounded to float64: meant for small sizes (H up to ~16).
    """
    from lstmsym.verification.scalar import ScalarEnv, forward_step, instantiate

    cell = get_cell(cell)
    sizes = _all_sizes(cell, sizes)
    env = ScalarEnv(sizes, _leaf_values(cell, values, sizes))
    forward_step(cell, env)
    u, e = vjp(cell, of, wrt, truncation)
    n = env.size(u.shape[0])
    jt = np.zeros((env.size(cell.state(wrt).shape[0]), n))
    for k in range(n):
        env.values[u] = sympy.Matrix(n, 1, lambda i, j: 1 if i == k else 0)
        col = instantiate(e, env).evalf()
        jt[:, k] = np.array(col.tolist(), dtype=np.float64).reshape(-1)
    return jt.T


def _all_sizes(cell, sizes: dict) -> dict:
    out = dict(sizes)
    for name, (base, factor) in cell.dims.items():
        if name in out:
            continue
        if base not in out or out[base] % factor:
            raise LstmsymError(f"cell {cell.name!r}: size of {base!r} must be given and a "
                               f"multiple of {factor} (dimension {name!r} = {base}/{factor})")
        out[name] = out[base] // factor
    return out


def _leaf_values(cell, values: dict, sizes: dict) -> dict:
    """Sym -> SymPy matrix of Floats for every parameter, input and previous state."""
    leaves = {p.name: p for p in cell.params}
    leaves.update({x.name: x for x in cell.inputs})
    leaves.update({s.name + "_prev": s.prev for s in cell.states})
    by_sym = {k: v for k, v in values.items() if isinstance(k, Sym)}
    out, missing = {}, []
    for name, sym in leaves.items():
        v = by_sym.get(sym, values.get(name))
        if v is None:
            missing.append(name)
            continue
        arr = np.asarray(v, dtype=np.float64)
        want = tuple(sizes[d] for d in sym.shape)
        if len(want) == 1:
            arr = arr.reshape(-1)
            if arr.shape != want:
                raise LstmsymError(f"value of {name!r} has {arr.size} entries, need {want[0]}")
            out[sym] = sympy.Matrix(want[0], 1, [sympy.Float(float(a)) for a in arr])
        else:
            if arr.shape != want:
                raise LstmsymError(f"value of {name!r} has shape {arr.shape}, need {want}")
            out[sym] = sympy.Matrix(want[0], want[1],
                                    [sympy.Float(float(a)) for a in arr.reshape(-1)])
    if missing:
        raise LstmsymError(f"jacobian_matrix({cell.name}): no value for " + ", ".join(missing))
    return out


__all__ = ["vjp", "diagonal", "jacobian_latex", "jacobian_matrix"]
