"""Names and shared statements of the kernel builders (kernel_build, kernel_wide, kernel_backward).

Where a forward value or a gradient lives in the generated code, inside a time step or over a
window of steps (``Names``, ``_seq``, ``_slice``, ``_binding``); the comments that quote the
forward equations as the cell writes them (``_quote``, ``_original``); and the statements every
generated function opens with: sizes, parameters and stacked matrices (``_dims``, ``_params``,
``_stacks``).
"""
from __future__ import annotations

from lstmsym.expr import Act, Grad, OutGrad, Sym
from lstmsym.naming import code_name
from lstmsym.printing.kernel import Assign, call
from lstmsym.printing.numpy_printer import NumpyPrinter


# ----- names -------------------------------------------------------------------------------------
def _seq(name: str) -> str:
    return f"{name}_seq"


def _slice(g, k) -> str:
    lo, hi = g.slices[k]
    return "" if len(g.members) == 1 else f"{lo}:{hi}"


class Names:
    """Leaf -> code, in one of two places: inside a time step or over a window of steps."""

    def __init__(self, plan, window: bool):
        self.plan, self.window = plan, window

    def __call__(self, leaf) -> str:
        plan = self.plan
        if isinstance(leaf, Grad):
            v = leaf.of.at(0)
            if not self.window:
                return "d" + code_name(v)
            kind, where, k = plan.home[v]
            if kind == "seq":
                return f"{where}[lo:hi]"
            s = _slice(where, k)
            return f"{_seq(where.dbuffer)}[lo:hi" + (f", :, {s}]" if s else "]")
        if isinstance(leaf, OutGrad):
            return f"d{leaf.of.name}_out"
        s = leaf
        if s.role == "param":
            return s.name
        if not self.window:
            return f"{s.name}[t]" if s.role == "input" else code_name(s)
        if s.role == "input":
            return f"{s.name}[lo:hi]"
        if s.role == "state":
            return f"{s.name}_seq[lo:hi]" if s.time == -1 else f"{s.name}_seq[lo + 1:hi + 1]"
        if s.at(0) in plan.proj or s.at(0) in plan.act_slot:
            g, k = plan.proj.get(s.at(0)) or plan.act_slot[s.at(0)]
            sl = _slice(g, k)
            return f"{_seq(g.buffer)}[lo:hi" + (f", :, {sl}]" if sl else "]")
        return f"{s.name}_seq[lo:hi]"


def _binding(plan, s: Sym):
    """The statement that binds a forward value inside a backward step."""
    if s.role == "state":
        return Assign(code_name(s), f"{s.name}_seq[t]" if s.time == -1 else f"{s.name}_seq[t + 1]")
    if s in plan.proj or s in plan.act_slot:
        g, k = plan.proj.get(s) or plan.act_slot[s]
        sl = _slice(g, k)
        return Assign(code_name(s), f"{_seq(g.buffer)}[t" + (f", :, {sl}]" if sl else "]"))
    return Assign(code_name(s), f"{s.name}_seq[t]")


# ----- quoted equations --------------------------------------------------------------------------
def _quote(plan, targets) -> list:
    """Comments quoting the forward equations (as the cell writes them) of some targets."""
    pr = NumpyPrinter()
    seen, out = [], []
    for v in targets:
        if v is None:
            continue
        v = plan.parent.get(v.at(0), v.at(0))
        if v in seen:
            continue
        seen.append(v)
    order = {e.target: i for i, e in enumerate(plan.cell.equations)}
    for v in sorted(seen, key=lambda v: order.get(v, -1)):
        eq = plan.cell.equation(v.name)
        out.append(f"{code_name(eq.target)} = {pr.doprint(eq.expr)}")
    return out


def _original(plan, v):
    """The right-hand side of v's equation as the cell writes it (pre-activations inlined
    where the kernel fuses them)."""
    try:
        expr = plan.cell.equation(v.name).expr
    except KeyError:        # a quantity the kernel named (tanh_C): its normalized equation
        return plan.ncell.equation(v.name).expr
    if isinstance(expr, Act) and isinstance(expr.arg, Sym):
        try:
            pre = plan.cell.equation(expr.arg.name)
        except KeyError:
            return expr
        if pre.preact_of == v.name:
            return Act(expr.fn, pre.expr)
    return expr


# ----- opening statements ------------------------------------------------------------------------
def _dims(plan) -> list:
    return [Assign(d, f'sizes["{d}"]') for d in ("I", "H", *sorted(plan.dims))]


def _params(plan) -> list:
    return [Assign(p.name, f'params["{p.name}"]') for p in plan.ncell.params]


def _stacks(plan, halved=None, transposed=False) -> list:
    """The stacked matrices; ``halved`` maps a group name to the members scaled by 0.5.

    ``transposed``: the matrix of each per-step group (the recurrent products) also transposed
    into memory order (the kernel helper ``transposed``), named ``<weights>_T``, also for a
    group of one: ``v @ W_T`` then reads it in memory order, which OpenBLAS does faster than
    ``v @ W.T`` (float32, one step's product: 20-30 % at H = 128-512; float64: 0-5 %). The
    all-steps input product is as fast either way: it keeps ``W.T``.
    """
    out = []
    for g in plan.groups:
        half = (halved or {}).get(g.name, ())
        if len(g.members) > 1:
            out.append(Assign(g.weights, call(
                "np.concatenate", "[" + ", ".join(("0.5 * " if k in half else "") + p.name
                                                  for k, (p, _) in enumerate(g.members))
                + "]", "axis=0")))
        if transposed and g.per_step:
            out.append(Assign(f"{g.weights}_T", call("transposed", g.weights)))
    return out


def _size(shape) -> str:
    return shape[0]
