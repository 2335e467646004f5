"""Reverse accumulation over a cell's equations: the backward recurrences at vector level.

``derive(cell)`` walks the equations of one step backwards with the rules table (rules.py) and
returns a ``Derivation``: for every quantity v at step t, the terms of nabla_{v_t} Div, each in
terms of the gradients of the quantities that consume v. A state S_t is consumed at t (by later
equations) and at t+1 (where S_{t-1} appears in step t+1's equations): its gradient is

    nabla_{S_t} Div = d_out(S_t) + (terms at t) + (terms from step t+1, shifted one step),

which is the full-BPTT recurrence of the lecture notes. Nothing is unrolled: the cost depends on
the number of equations only, not on the hidden size or the sequence length.

``truncation="1997"`` is Hochreiter & Schmidhuber's truncated gradient (1997, Sec. 4 and App.
A.2): errors arriving at the net inputs of gates and cells are not propagated back to the
previous step's states; only the constant error carousel (the state equation) carries error back.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lstmsym.cells.spec import Cell
from lstmsym.errors import LstmsymError
from lstmsym.expr import Grad, OutGrad, Sym, add, shift, substitute, terms
from lstmsym.rules import backprop

TRUNCATIONS = (None, "1997")


@dataclass(frozen=True)
class Term:
    """One summand of a gradient, with the quantity it flows through (its consumer)."""

    expr: object
    via: Sym | None     # the equation target whose gradient this term carries (None: output)


@dataclass
class Derivation:
    """The one-step backward equations of a cell.

    Attributes:
        cell: the cell derived.
        outputs: states with a direct output gradient (``OutGrad``) at every step.
        truncation: ``None`` (exact gradient) or ``"1997"``.
        grads: var at t -> terms of nabla_{var_t} Div (states: output + local + from t+1).
        carry: state name -> terms of the gradient step t sends to S_{t-1}.
        params: param name -> per-step terms (the BPTT gradient is their sum over t).
        inputs: input name -> terms of nabla_{x_t} Div.
        order: vars at t in an order in which their gradients can be computed (reverse forward).
    """

    cell: Cell
    outputs: tuple
    truncation: str | None
    grads: dict = field(default_factory=dict)
    carry: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    order: list = field(default_factory=list)

    # --- gradients as single expressions ---------------------------------------------------------
    def grad(self, var) -> object:
        """nabla_{var_t} Div as one expression (a sum of its terms)."""
        var = self._var(var)
        return _sum(self.grads[var], var.shape)

    def carry_expr(self, state: str) -> object:
        """What step t sends to nabla_{S_{t-1}} Div."""
        return _sum(self.carry[state], self.cell.state(state).shape)

    def param_grad(self, name: str) -> object:
        """The per-step gradient of a parameter (BPTT sums it over t)."""
        return _sum(self.params[name], self.cell.param(name).shape)

    def input_grad(self, name: str = "x") -> object:
        return _sum(self.inputs[name], next(x for x in self.cell.inputs if x.name == name).shape)

    def closed_form(self, var, keep=None) -> object:
        """nabla_{var_t} Div with the gradients of intermediates substituted away.

        Only gradients of states (at t and t+1) and output gradients remain, as in the lecture's
        nabla_{C_t} Div and nabla_{h_t} Div. ``keep`` names extra quantities to leave standing.
        """
        var = self._var(var)
        keep = set(keep or ())
        stop = {s.name for s in self.cell.states} | keep
        return self._expand(self.grad(var), stop)

    def _expand(self, expr, stop):
        mapping = {}
        for g in {n for n in expr.walk() if isinstance(n, Grad)}:
            v = g.of
            if v.name in stop:
                continue
            base = self._var(v.name)
            mapping[g] = shift(self._expand(self.grad(base), stop), v.time)
        return substitute(expr, mapping) if mapping else expr

    def _var(self, var) -> Sym:
        if isinstance(var, Sym):
            return var.at(0)
        for v in self.grads:
            if v.name == var:
                return v
        known = ", ".join(v.name for v in self.grads)
        raise LstmsymError(f"{self.cell.name} has no quantity {var!r}; it has: {known}")


def _sum(ts, shape):
    from lstmsym.expr import Zero
    return add(Zero(shape), *(t.expr for t in ts))


def derive(cell: Cell, outputs: tuple | None = None, truncation: str | None = None) -> Derivation:
    """Derive the one-step backward equations of ``cell``.

    Arguments:
        cell: a validated ``Cell``.
        outputs: states that receive a gradient from the output at each step (default:
            ``cell.outputs``; the kernels use every state).
        truncation: ``None`` or ``"1997"`` (no error through net inputs back to t-1).

    Returns:
        a ``Derivation``.

    >>> from lstmsym.cells import get_cell
    >>> d = derive(get_cell("lstm"))
    >>> sorted(d.carry)
    ['C', 'h']
    """
    if truncation not in TRUNCATIONS:
        raise LstmsymError(f"unknown truncation {truncation!r}; use one of: none, 1997")
    outputs = tuple(cell.outputs if outputs is None else outputs)
    d = Derivation(cell, outputs, truncation)
    state_names = set(cell.state_names)
    local = {e.target: [] for e in cell.equations}
    carry = {s: [] for s in cell.state_names}
    params = {p.name: [] for p in cell.params}
    inputs = {x.name: [] for x in cell.inputs}

    for eq in reversed(cell.equations):
        g = Grad(eq.target)
        truncate_here = truncation == "1997" and eq.preact_of is not None

        def emit(leaf: Sym, term, eq=eq, truncate_here=truncate_here):
            t = Term(term, eq.target)
            if leaf.role == "param":
                params[leaf.name].append(t)
            elif leaf.role == "input":
                inputs[leaf.name].append(t)
            elif leaf.time == -1:
                if not truncate_here:
                    carry[leaf.name].append(t)
            else:
                local[leaf.at(0)].append(t)

        backprop(eq.expr, g, emit)

    for eq in cell.equations:
        v = eq.target
        ts = []
        if v.name in state_names:
            if v.name in outputs:
                ts.append(Term(OutGrad(v), None))
            ts.extend(local[v])
            ts.extend(Term(shift(t.expr, 1), shift(t.via, 1)) for t in carry[v.name])
        else:
            ts.extend(local[v])
        d.grads[v] = ts
    d.order = [e.target for e in reversed(cell.equations)]
    d.carry, d.params, d.inputs = carry, params, inputs
    return d


def grad_symbols(expr) -> set:
    """The Grad and OutGrad nodes an expression refers to."""
    return {n for n in expr.walk() if isinstance(n, (Grad, OutGrad))}


__all__ = ["derive", "Derivation", "Term", "grad_symbols", "terms", "TRUNCATIONS"]
