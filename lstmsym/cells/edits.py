"""Edits of a cell: the single changes that turn a base cell into a published variant.

Greff et al. 2017 ("LSTM: A Search Space Odyssey", IEEE TNNLS 28(10)) compare their vanilla
LSTM (our ``peephole-lstm``) with eight variants, each one change to the forward pass. Here each
change is a function ``Cell -> Cell``, so a variant is the base cell plus an edit, never a copy of
its equations (STYLE.md, "Cells are data"):

=========  ============================================  ===========================
variant    change                                        edit
=========  ============================================  ===========================
NIG        i_t = 1                                       ``fix_gate(cell, "i")``
NFG        f_t = 1                                       ``fix_gate(cell, "f")``
NOG        o_t = 1                                       ``fix_gate(cell, "o")``
NIAF       g(x) = x (block input)                        ``set_activation(cell, "C_tilde", identity)``
NOAF       h(x) = x (block output)                       ``set_activation(cell, "h", identity)``
NP         no peepholes                                  ``drop_peepholes(cell)``
CIFG       f_t = 1 - i_t                                 ``couple_gates(cell, "f", "i")``
FGR        gates see i, f, o at t-1 through R matrices   ``add_gate_recurrence(cell)``
=========  ============================================  ===========================

Every edit returns a new, validated ``Cell``; parameters no equation uses any more are dropped,
and equations are kept in an order in which each uses only earlier ones.

>>> from lstmsym.cells import get_cell
>>> nig = fix_gate(get_cell("peephole-lstm"), "i")
>>> [e.target.name for e in nig.equations]
['f_bar', 'f', 'C_tilde_bar', 'C_tilde', 'C', 'o_bar', 'o', 'h']
"""
from __future__ import annotations

from lstmsym.cells.spec import Cell, Equation
from lstmsym.errors import CellError
from lstmsym.expr import Act, Add, Expr, Ones, Sym, add, map_children, substitute


# ----- helpers ------------------------------------------------------------------------------------
def _target(cell: Cell, name: str) -> Sym:
    try:
        return cell.equation(name).target
    except KeyError:
        raise CellError(f"cell {cell.name!r} has no equation for {name!r}; it has: "
                        + ", ".join(e.target.name for e in cell.equations)) from None


def _preact(cell: Cell, gate: str) -> Equation | None:
    return next((e for e in cell.equations if e.preact_of == gate), None)


def _rebuild(cell: Cell, equations, states=None, **changes) -> Cell:
    """The cell with new equations: unused parameters dropped, equations put in a valid order."""
    equations = _in_order(list(equations))
    used = {s.name for e in equations for s in e.expr.syms() if s.role == "param"}
    params = tuple(p for p in cell.params if p.name in used)
    return cell.replace(equations=tuple(equations), params=params,
                        states=cell.states if states is None else tuple(states), **changes)


def _in_order(equations: list) -> list:
    """Stable topological order: each equation after the ones whose targets (at t) it uses."""
    targets = {e.target.name for e in equations}
    done, out, pending = set(), [], list(equations)
    while pending:
        for k, e in enumerate(pending):
            needs = {s.name for s in e.expr.syms() if s.time == 0 and s.name in targets}
            if needs <= done:
                out.append(pending.pop(k))
                done.add(e.target.name)
                break
        else:   # a cycle: keep the order and let validation name the equation
            return out + pending
    return out


def _substitute_all(equations, mapping) -> list:
    return [Equation(substitute(e.target, mapping), substitute(e.expr, mapping), e.preact_of,
                     e.label) for e in equations]


# ----- gates --------------------------------------------------------------------------------------
def fix_gate(cell: Cell, gate: str) -> Cell:
    """The gate is constant 1 (Greff's NIG, NFG, NOG): its equations and parameters go.

    >>> from lstmsym.cells import get_cell
    >>> nog = fix_gate(get_cell("peephole-lstm"), "o")
    >>> nog.equation("h").expr
    tanh(C[t])
    """
    g = _target(cell, gate)
    pre = _preact(cell, gate)
    drop = {gate} | ({pre.target.name} if pre else set())
    rest = [e for e in cell.equations if e.target.name not in drop]
    return _rebuild(cell, _substitute_all(rest, {g: Ones(g.shape)}))


def couple_gates(cell: Cell, gate: str, to: str) -> Cell:
    """``gate = 1 - to`` (Greff's CIFG: f_t = 1 - i_t); the coupled gate's parameters go."""
    g, other = _target(cell, gate), _target(cell, to)
    pre = _preact(cell, gate)
    eqs = []
    for e in cell.equations:
        if pre is not None and e is pre:
            continue
        if e.target == g:
            e = Equation(g, 1 - other, label=f"{gate} coupled to {to}: {gate} = 1 - {to}")
        eqs.append(e)
    return _rebuild(cell, eqs)


# ----- activations --------------------------------------------------------------------------------
def set_activation(cell: Cell, target: str, fn) -> Cell:
    """Replace every activation in the equation of ``target`` by ``fn``.

    ``fn`` is an ``Activation`` or ``lstmsym.ops.identity`` (Greff's NIAF: g(x) = x on the block
    input; NOAF: h(x) = x on the block output). The pre-activation equation stays, so with the
    identity the block input reads ``z_t = z̄_t`` as in the paper.
    """
    t = _target(cell, target)

    def swap(e: Expr) -> Expr:
        if isinstance(e, Act):
            return fn(swap(e.arg))
        return map_children(e, swap)

    eqs = [Equation(e.target, swap(e.expr), e.preact_of, e.label) if e.target == t else e
           for e in cell.equations]
    if all(a is b for a, b in zip(eqs, cell.equations)):
        raise CellError(f"cell {cell.name!r}, equation for {target!r}: has no activation")
    return _rebuild(cell, eqs)


# ----- peepholes ----------------------------------------------------------------------------------
def drop_peepholes(cell: Cell, state: str = "C") -> Cell:
    """Remove the summands of gate pre-activations that look at ``state`` (Greff's NP)."""
    names = {state}

    def keep(term: Expr) -> bool:
        return not any(s.name in names and s.role == "state" for s in term.syms())

    eqs, dropped = [], False
    for e in cell.equations:
        if e.preact_of is not None and isinstance(e.expr, Add):
            kept = [a for a in e.expr.args if keep(a)]
            dropped |= len(kept) != len(e.expr.args)
            e = Equation(e.target, add(*kept), e.preact_of, e.label)
        eqs.append(e)
    if not dropped:
        raise CellError(f"cell {cell.name!r} has no peephole connections from {state!r}")
    return _rebuild(cell, eqs)


# ----- recurrence -----------------------------------------------------------------------------------
def add_gate_recurrence(cell: Cell, gates=("i", "f", "o"), prefix: str = "R") -> Cell:
    """Every gate's pre-activation gets ``R_{g'g} g'_{t-1}`` for each gate g' (Greff's FGR).

    The gates' values at t-1 must be carried to step t, so the gates become states of the cell
    (after the existing ones). Parameter ``R_ab`` (H x H) maps gate a at t-1 into gate b.
    """
    tgts = [_target(cell, g) for g in gates]
    as_state = {g: Sym(g.name, "state", g.shape, 0, g.latex) for g in tgts}
    eqs = _substitute_all(cell.equations, as_state)
    new_params = []
    for k, e in enumerate(eqs):
        if e.preact_of not in gates:
            continue
        extra = []
        for src in tgts:
            p = Sym(f"{prefix}_{src.name}{e.preact_of}", "param", (src.shape[0], src.shape[0]),
                    0, f"{prefix}_{{{src.name}{e.preact_of}}}")
            new_params.append(p)
            extra.append(p @ as_state[src].prev)
        eqs[k] = Equation(e.target, add(e.expr, *extra), e.preact_of, e.label)
    states = list(cell.states) + [as_state[g] for g in tgts]
    grown = cell.replace(params=cell.params + tuple(new_params), equations=tuple(eqs),
                         states=tuple(states))
    return _rebuild(grown, grown.equations)


def renamed(cell: Cell, name: str, source: str | None = None,
            description: str | None = None) -> Cell:
    """The same cell under another registry name (and source/description)."""
    return cell.replace(name=name, source=cell.source if source is None else source,
                        description=cell.description if description is None else description)


__all__ = ["fix_gate", "couple_gates", "set_activation", "drop_peepholes",
           "add_gate_recurrence", "renamed"]
