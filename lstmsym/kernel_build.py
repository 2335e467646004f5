"""Build the code tree of a kernel module from a plan (codegen.plan_kernel).

Three generated functions carry the cell: ``forward`` (input projections of all steps as one
GEMM, then the equations step by step), and one ``backward_window_<mode>`` per backward mode
(exact and the 1997 truncation), which runs one backward pass over steps end..floor and then
adds the parameter and input gradients of those steps as GEMMs over the whole window.
``backward`` validates, picks the windows (full BPTT: one) and calls it.

Gates of the form ``sigmoid``/``tanh`` of (recurrent + input projection + bias) run *wide*
(``wide_activations``, ``wide_backward``): the biases are added to the all-steps input
projection once, one ``np.tanh`` per step covers every such gate in the stacked buffer (the
sigmoid rows of the stacked matrices halved: sigmoid(z) = 0.5 tanh(z / 2) + 0.5), the gate
outputs stay in that buffer for the backward pass, and their deltas are one pass over the
stacked gradient buffer (sigmoid' = y - y^2, tanh' = 1 - y^2).
"""
from __future__ import annotations

import numpy  # noqa: F401  (the kernel's only dependency; imported here to fail early)

from lstmsym.expr import Act, Add, Grad, Had, OutGrad, Outer, Sym, Zero, add
from lstmsym.naming import code_name
from lstmsym.printing.kernel import (AugAssign, Assign, Comment, For, Function, If, Module,
                                     Raise, Return, Source, call)
from lstmsym.printing.kernel import Expr as Stmt
from lstmsym.printing.numpy_printer import (ActDerivOut, Code, NumpyPrinter, Product,
                                            ScratchPool, UfuncEmitter)

MODES = {None: "exact", "1997": "1997"}


# ----- names ------------------------------------------------------------------------------------
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


def _dims(plan) -> list:
    return [Assign(d, f'sizes["{d}"]') for d in ("I", "H", *sorted(plan.dims))]


def _params(plan) -> list:
    return [Assign(p.name, f'params["{p.name}"]') for p in plan.ncell.params]


def _stacks(plan, halved=None) -> list:
    """The stacked matrices; ``halved`` maps a group name to the members scaled by 0.5."""
    out = []
    for g in plan.groups:
        if len(g.members) > 1:
            half = (halved or {}).get(g.name, ())
            out.append(Assign(g.weights, call(
                "np.concatenate", "[" + ", ".join(("0.5 * " if k in half else "") + p.name
                                                  for k, (p, _) in enumerate(g.members))
                + "]", "axis=0")))
    return out


def _size(shape) -> str:
    return shape[0]


# ----- forward ------------------------------------------------------------------------------------
def _consumers(ncell) -> dict:
    out = {}
    for eq in ncell.equations:
        for sym in eq.expr.syms():
            if sym.role in ("var", "state") and sym.time == 0:
                out.setdefault(sym, []).append(eq)
    return out


def _fused_preactivations(plan) -> dict:
    """u -> its expression, for pre-activations written straight into their activation's
    buffer (used once, by ``v = f(u)``, and not read by the backward pass)."""
    consumers, out = _consumers(plan.ncell), {}
    for eq in plan.ncell.equations:
        u = eq.target
        users = consumers.get(u, [])
        if (u.role == "var" and u not in plan.stored and u not in plan.proj and len(users) == 1
                and isinstance(users[0].expr, Act) and users[0].expr.arg == u):
            out[u] = eq.expr
    return out


def _combine(plan):
    """Add the input projections and biases of pre-activations to the recurrent projections
    in a few wide operations per step, instead of one sum per gate.

    For the per-step group of a previous state with the most members and the input group,
    slot k can be combined when both members feed, as plain summands, the same equation,
    at the same columns, and the backward pass does not read the recurrent member. Returns
    (group, runs, removed): runs of slots [(k0, k1, with_bias)], and equation target ->
    summands now already in the recurrent member.
    """
    inputs = [g for g in plan.groups if not g.per_step and g.name not in plan.stored_groups]
    recurrent = [g for g in plan.groups if g.per_step and g.vec.time == -1]
    if not inputs or not recurrent:
        return None, [], {}
    xg, hg = inputs[0], max(recurrent, key=lambda g: len(g.members))
    owner = {}
    for eq in plan.ncell.equations:
        if isinstance(eq.expr, Add):
            for a in eq.expr.args:
                owner[a] = eq
    ok, removed = [], {}
    for k, (_, p) in enumerate(hg.members):
        eq = owner.get(p)
        good = (k < len(xg.members) and eq is not None and owner.get(xg.members[k][1]) is eq
                and xg.slices[k] == hg.slices[k] and p not in plan.used)
        bias = None
        if good:
            bias = next((a for a in eq.expr.args if isinstance(a, Sym) and a.role == "param"
                         and len(a.shape) == 1 and a.shape == p.shape), None)
            removed[eq.target] = [xg.members[k][1]] + ([bias] if bias is not None else [])
        ok.append((good, bias))
    runs, k = [], 0
    while k < len(ok):
        if not ok[k][0]:
            k += 1
            continue
        j = k
        while j + 1 < len(ok) and ok[j + 1][0] and (ok[j + 1][1] is None) == (ok[k][1] is None):
            j += 1
        runs.append((k, j, [b for _, b in ok[k:j + 1]] if ok[k][1] is not None else None))
        k = j + 1
    return (hg, xg), runs, removed


def wide_activations(plan):
    """Gates whose activation runs in place in the stacked recurrent buffer, all at once.

    A slot k of the combined recurrent group (``_combine``) qualifies when its pre-activation
    is exactly recurrent projection + input projection (+ bias) and feeds only
    ``v = sigmoid(u)`` or ``v = tanh(u)``. Then one ``np.tanh`` over the stacked buffer computes
    every such gate, with sigmoid(z) = 0.5 tanh(z / 2) + 0.5: the sigmoid rows of the stacked
    matrices and biases are halved once per call (exact: a power of two), and 0.5 y + 0.5 is
    applied to the sigmoid columns after. The output v lives in its slot, where the backward
    pass reads it. Returns ``(pair, runs, removed, fused, slots)`` with
    slots: k -> (activation name, v); also sets ``plan.act_slot`` (v -> (group, k)).
    """
    if getattr(plan, "wide", None) is not None:
        return plan.wide
    pair, runs, removed = _combine(plan)
    fused = _fused_preactivations(plan)
    slots = {}
    if pair:
        hg, xg = pair
        combined = {k for k0, k1, _ in runs for k in range(k0, k1 + 1)}
        stackable = len(hg.members) > 1 and len(xg.members) > 1
        for eq in plan.ncell.equations:
            e, v = eq.expr, eq.target
            if not (isinstance(e, Act) and e.fn.name in ("sigmoid", "tanh") and v.role == "var"
                    and e.arg in fused and e.arg in removed and isinstance(fused[e.arg], Add)):
                continue
            rest = [a for a in fused[e.arg].args if a not in removed[e.arg]]
            if len(rest) != 1 or plan.proj.get(rest[0], (None,))[0] is not hg:
                continue
            k = plan.proj[rest[0]][1]
            if k in combined and (e.fn.name == "tanh" or stackable):
                slots[k] = (e.fn.name, v)
        plan.act_slot = {v: (hg, k) for k, (_, v) in slots.items()}
        if any(v in plan.stored for v in plan.act_slot):
            plan.stored_groups.add(hg.name)
            plan.stored -= set(plan.act_slot)
    plan.wide = (pair, runs, removed, fused, slots)
    return plan.wide


def _ranges(keys) -> list:
    """Maximal runs (k0, k1) of consecutive integers."""
    out = []
    for k in sorted(keys):
        if out and out[-1][1] == k - 1:
            out[-1] = (out[-1][0], k)
        else:
            out.append((k, k))
    return out


def _wide_lines(plan, slots) -> list:
    """The activations of the qualifying slots, in place in the stacked buffer."""
    (hg, _), pr = plan.wide[0], NumpyPrinter()

    def cols(k0, k1):
        whole = k0 == 0 and k1 == len(hg.members) - 1
        return hg.buffer if whole else f"{hg.buffer}[:, {hg.slices[k0][0]}:{hg.slices[k1][1]}]"

    out = [Comment("these gates at once; sigmoid(z) = 0.5 * np.tanh(0.5 * z) + 0.5 (rows "
                   "halved above):\n" + "\n".join(
                       f"{code_name(v)} = {pr.doprint(_original(plan, v))}"
                       for _, v in (slots[k] for k in sorted(slots))))]
    for k0, k1 in _ranges(slots):
        out.append(Stmt(call("np.tanh", cols(k0, k1), out=cols(k0, k1))))
    for k0, k1 in _ranges(k for k in slots if slots[k][0] == "sigmoid"):
        out.append(Stmt(call("np.multiply", cols(k0, k1), "0.5", out=cols(k0, k1))))
        out.append(Stmt(call("np.add", cols(k0, k1), "0.5", out=cols(k0, k1))))
    for k in sorted(slots):
        out.append(Assign(code_name(slots[k][1]), cols(k, k)))
    return out


def forward_function(plan) -> Function:
    ncell = plan.ncell
    pr = NumpyPrinter(names=Names(plan, window=False))
    pool = ScratchPool("work")
    emitter = UfuncEmitter(pr, pool)
    pair, runs, removed, fused, slots = wide_activations(plan)
    halves = {k for k in slots if slots[k][0] == "sigmoid"}
    halved = {pair[0].name: halves, pair[1].name: halves} if halves else {}
    body = [Assign("T, B, sizes", call("check_inputs", "params", "x", "state0"))]
    body += _dims(plan) + _params(plan)
    body.append(Comment("stacked matrices: one product per group of projections of one vector"
                        + (" (rows of sigmoid gates halved)" if halves else "")))
    body += _stacks(plan, halved) + _bias_stacks(pair, runs, halves)
    body.append(Comment("states for t = 0..T (index 0 is the initial state)"))
    for st in ncell.states:
        size = _size(st.shape)
        body.append(Assign(_seq(st.name), call("empty_seq", f"(T + 1, B, {size})",
                                                "dtype=x.dtype")))
        body.append(If(f'state0 is not None and "{st.name}" in state0', [
            Stmt(call("check_array", f'"state0[\'{st.name}\']"', f'state0["{st.name}"]',
                      f"(B, {size})", "x.dtype")),
            Assign(f"{_seq(st.name)}[0]", f'state0["{st.name}"]')],
            [Assign(f"{_seq(st.name)}[0]", "0.0")]))
    stored = [e.target for e in ncell.equations if e.target in plan.stored]
    if stored:
        body.append(Comment("values the backward pass reads, for every step"))
    for v in stored:
        body.append(Assign(_seq(v.name), call("empty_seq", f"(T, B, {_size(v.shape)})",
                                               "dtype=x.dtype")))
    buffers = []
    # the input projections of all steps written straight into the stored stacked buffer,
    # when they and the biases add to every slot of it
    direct = bool(pair) and pair[0].name in plan.stored_groups and len(runs) == 1 and \
        runs[0][:2] == (0, len(pair[0].members) - 1) and pair[1].rows == pair[0].rows and \
        len(pair[1].members) == len(pair[0].members)
    for g in plan.groups:
        if direct and g is pair[0]:
            continue
        if not g.per_step:
            body.append(Comment(f"projections of {g.name} for all timesteps: one GEMM"))
            if direct and g is pair[1]:
                body.append(Comment(f"(into the buffer the projections of {pair[0].name} are "
                                    "added to)"))
                dest = _seq(pair[0].buffer)
            else:
                dest = _seq(g.buffer)
            body.append(Assign(dest, call("seq_matmul", g.vec.name, f"{g.weights}.T")))
            if pair and g is pair[1]:
                body += _bias_adds(pair, runs, dest)
        elif g.name in plan.stored_groups:
            body.append(Assign(_seq(g.buffer), call("empty_seq", f"(T, B, {g.rows})",
                                                     "dtype=x.dtype")))
        else:
            buffers.append(Assign(g.buffer, call("np.empty", f"(B, {g.rows})", "dtype=x.dtype")))
    loop = [Assign(f"{st.name}_prev", f"{_seq(st.name)}[t]") for st in ncell.states]
    done = set()
    for eq in ncell.equations:
        v = eq.target
        if v in fused or v in plan.act_slot:
            continue
        if v in plan.proj:
            g, k = plan.proj[v]
            sl = _slice(g, k)
            if not g.per_step:
                loop.append(Assign(code_name(v), f"{_seq(g.buffer)}[t" + (f", :, {sl}]" if sl
                                                                          else "]")))
                continue
            if g.name not in done:
                done.add(g.name)
                if g.name in plan.stored_groups:
                    loop.append(Assign(g.buffer, f"{_seq(g.buffer)}[t]"))
                if direct and g is pair[0]:
                    recurrent = f"{g.name}_recurrent"
                    buffers.append(Assign(recurrent, call("np.empty", f"(B, {g.rows})",
                                                          "dtype=x.dtype")))
                    loop.append(Stmt(call("np.matmul", pr.doprint(g.vec), f"{g.weights}.T",
                                          out=recurrent)))
                    loop.append(Comment("added to the input projections (biases included)"))
                    loop.append(Stmt(call("np.add", g.buffer, recurrent, out=g.buffer)))
                else:
                    loop.append(Stmt(call("np.matmul", pr.doprint(g.vec), f"{g.weights}.T",
                                          out=g.buffer)))
                if pair and g is pair[0] and not direct:
                    loop += _combined_adds(pair, runs)
                if pair and g is pair[0] and slots:
                    loop += _wide_lines(plan, slots)
            loop.append(Assign(code_name(v), f"{g.buffer}[:, {sl}]" if sl else g.buffer))
            continue
        expr = eq.expr
        if isinstance(expr, Act) and expr.arg in fused:
            expr = Act(expr.fn, fused[expr.arg])
        was_fused = isinstance(eq.expr, Act) and eq.expr.arg in fused
        target = eq.expr.arg if was_fused else v
        if target in removed:
            gone = removed[target]
            if isinstance(expr, Act):
                expr = Act(expr.fn, add(*[a for a in expr.arg.args if a not in gone]))
            else:
                expr = add(*[a for a in expr.args if a not in gone])
        loop.append(Comment(f"{code_name(v)} = {NumpyPrinter().doprint(_original(plan, v))}"))
        name = code_name(v)
        if v.role == "state":
            loop.append(Assign(name, f"{_seq(v.name)}[t + 1]"))
        elif v in plan.stored:
            loop.append(Assign(name, f"{_seq(v.name)}[t]"))
        else:
            buffers.append(Assign(name, call("np.empty", f"(B, {_size(v.shape)})",
                                             "dtype=x.dtype")))
        loop += [Stmt(line) for line in emitter.emit(expr, name)]
    body.append(Comment("buffers reused at every step"))
    body += buffers
    body += [Assign(name, call("np.empty", f"(B, {dim})", "dtype=x.dtype"))
             for dim, name in pool.made]
    body.append(For("t", "range(T)", _drop_unused_bindings(loop, plan)))
    cache = ['"x": x'] + [f'"{_seq(st.name)}": {_seq(st.name)}' for st in ncell.states]
    cache += [f'"{_seq(v.name)}": {_seq(v.name)}' for v in stored]
    cache += [f'"{_seq(g.buffer)}": {_seq(g.buffer)}' for g in plan.groups
              if g.name in plan.stored_groups]
    body.append(Assign("outputs", "{" + ", ".join(f'"{st.name}": {_seq(st.name)}[1:]'
                                                   for st in ncell.states) + "}"))
    body.append(Assign("cache", "{" + ", ".join(cache) + "}"))
    body.append(Return("outputs, cache"))
    doc = ("Run the cell over a sequence.\n\n"
           "Arguments:\n"
           "    params: dict name -> array, shapes as in PARAMS.\n"
           "    x: (T, B, I) inputs, float32 or float64 (the dtype of params).\n"
           "    state0: None (zeros) or dict state name -> (B, H) initial state.\n\n"
           "Returns:\n"
           "    outputs: dict state name -> (T, B, H) values at t = 1..T.\n"
           "    cache: what backward needs.")
    return Function("forward", ["params", "x", "state0=None"], doc, body)


def _drop_unused_bindings(loop, plan) -> list:
    """Leave out the names of projection slices that no later statement reads."""
    import re
    names = {code_name(p) for p in (*plan.proj, *plan.act_slot)}
    out = []
    for k, stmt in enumerate(loop):
        if isinstance(stmt, Assign) and stmt.target in names:
            later = " ".join(getattr(s, "value", "") + " " + getattr(s, "target", "")
                             for s in loop[k + 1:])
            if not re.search(r"\b%s\b" % re.escape(stmt.target), later):
                continue
        out.append(stmt)
    return out


def _combined_adds(pair, runs) -> list:
    hg, xg = pair
    out = [Comment("the input projections (biases included) of these pre-activations, added "
                   "at once")]
    for k0, k1, _ in runs:
        lo, hi = hg.slices[k0][0], hg.slices[k1][1]
        whole = k0 == 0 and k1 == len(hg.members) - 1
        dest = hg.buffer if whole else f"{hg.buffer}[:, {lo}:{hi}]"
        xs = f"{_seq(xg.buffer)}[t]" if whole and xg.rows == hg.rows else \
            f"{_seq(xg.buffer)}[t, :, {lo}:{hi}]"
        out.append(Stmt(call("np.add", dest, xs, out=dest)))
    return out


def _bias_adds(pair, runs, buffer) -> list:
    """The biases of the combined pre-activations, added to the input projections of all
    timesteps (in ``buffer``) once, before the loop."""
    hg, xg = pair
    out = []
    for k0, k1, biases in runs:
        if not biases:
            continue
        lo, hi = hg.slices[k0][0], hg.slices[k1][1]
        whole = k0 == 0 and k1 == len(hg.members) - 1 and xg.rows == hg.rows
        dest = buffer if whole else f"{buffer}[:, :, {lo}:{hi}]"
        out.append(Stmt(call("np.add", dest, _bias_stack_name(hg, k0, k1), out=dest)))
    return out


def _bias_stack_name(hg, k0, k1) -> str:
    return f"b_{hg.name}_stack" + ("" if k0 == 0 and k1 == len(hg.members) - 1 else f"_{k0}_{k1}")


def _bias_stacks(pair, runs, halves=()) -> list:
    out = []
    for k0, k1, biases in runs:
        if biases:
            names = [("0.5 * " if k0 + j in halves else "") + b.name for j, b in enumerate(biases)]
            value = names[0] if len(names) == 1 else call(
                "np.concatenate", "[" + ", ".join(names) + "]")
            out.append(Assign(_bias_stack_name(pair[0], k0, k1), value))
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


# ----- backward -----------------------------------------------------------------------------------
def backward_function(plan) -> Function:
    ncell = plan.ncell
    body = [Assign("x", 'cache["x"]'),
            Assign("T, B, sizes", call("check_inputs", "params", "x", "None")),
            Assign("mode", call("parse_truncate", "truncate", "T"))]
    body += _dims(plan)
    body.append(If("not isinstance(d_outputs, dict)", [
        Raise("ValueError", 'f"d_outputs must be a dict state name -> (T, B, H) array, '
                            'states: {list(STATES)}"')]))
    shapes = "{" + ", ".join(f'"{s.name}": {_size(s.shape)}' for s in ncell.states) + "}"
    body.append(Assign("size", shapes))
    body.append(Assign("d_out", "{}"))
    body.append(For("name", "STATES", [
        If("d_outputs.get(name) is None",
           [Assign("d_out[name]", "None")],
           [Stmt(call("check_array", 'f"d_outputs[{name!r}]"', "d_outputs[name]",
                       "(T, B, size[name])", "x.dtype")),
            Assign("d_out[name]", "d_outputs[name]")])]))
    body.append(For("name", "d_outputs", [If("name not in STATES", [Raise(
        "ValueError", 'f"d_outputs has an unknown entry {name!r}; states: {list(STATES)}"')])]))
    body.append(If("d_final is not None", [For("name", "d_final", [
        If("name not in STATES", [Raise(
            "ValueError", 'f"d_final has an unknown entry {name!r}; states: {list(STATES)}"')]),
        Stmt(call("check_array", 'f"d_final[{name!r}]"', "d_final[name]",
                  "(B, size[name])", "x.dtype"))])]))
    body.append(Assign("d_params", "{name: np.zeros_like(params[name]) for name in PARAMS}"))
    body.append(Assign("d_x", call("empty_seq", "x.shape", "x.dtype")))
    body.append(Assign("d_x[...]", "0.0"))
    body.append(Assign("d_state0", "{name: np.zeros((B, size[name]), dtype=x.dtype) "
                                   "for name in STATES}"))
    body.append(Comment("gradient buffers of the stacked projections and of the deltas that the "
                        "\nparameter gradients read, for every step"))
    work = []
    for g in plan.groups:
        if g.shared is None:
            body.append(Assign(_seq(g.dbuffer), call("empty_seq", f"(T, B, {g.rows})",
                                                       "dtype=x.dtype")))
            work.append(f'"{_seq(g.dbuffer)}": {_seq(g.dbuffer)}')
    for v, (kind, name, _) in sorted(plan.home.items(), key=lambda kv: kv[0].name):
        if kind == "seq":
            body.append(Assign(name, call("empty_seq", f"(T, B, {_size(v.shape)})",
                                          "dtype=x.dtype")))
            work.append(f'"{name}": {name}')
    body.append(Assign("work", "{" + ", ".join(work) + "}"))
    body.append(If('mode is None or mode == "1997"', [Assign("passes", "[(T - 1, 0, 0)]")],
                   [Assign("passes", "windows(T, *mode)")]))
    body.append(Assign("backward_window", 'backward_window_1997 if mode == "1997" '
                                          'else backward_window_exact'))
    body.append(For("end, loss_start, floor", "passes", [
        Assign("final", "d_final if end == T - 1 else None"),
        Stmt(call("backward_window", "params", "cache", "d_out", "final", "work",
                  "(end, loss_start, floor, len(passes) == 1)", "(d_params, d_x, d_state0)"))]))
    body.append(Return("d_params, d_x, d_state0"))
    doc = ("Back-propagate through the sequence of the last forward call.\n\n"
           "Arguments:\n"
           "    params, cache: as given to / returned by forward.\n"
           "    d_outputs: dict state name -> (T, B, H) gradient of the loss (missing: zeros).\n"
           "    d_final: None or dict state name -> (B, H) gradient at the last state.\n"
           "    truncate: None (full BPTT), k, (k1, k2) (truncated BPTT: every k1 steps,\n"
           "        back-propagate at most k2 steps) or \"1997\" (Hochreiter & Schmidhuber's\n"
           "        truncation: no error back through the net inputs of gates and cells).\n\n"
           "Returns:\n"
           "    d_params (keys and shapes of params), d_x (T, B, I), d_state0 (dict state\n"
           "    name -> (B, H)).")
    return Function("backward", ["params", "cache", "d_outputs", "d_final=None",
                                 "truncate=None"], doc, body)


def wide_backward(plan, mode) -> dict:
    """The gate deltas of the wide slots (``wide_activations``) computed at once in a step.

    Slot k with output v = f(u) qualifies when u's gradient is exactly f'(v) o dv, lives in
    slot k of the recurrent group's gradient buffer and nothing else in the step reads it
    (the stacked carry GEMM reads the whole buffer after the deltas). Returns
    k -> (activation name, v, u); the dv then sit side by side in one (B, rows) buffer.
    """
    from lstmsym.codegen import collapse, rewrite
    pair, _, _, _, slots = wide_activations(plan)
    if not slots:
        return {}
    hg, d = pair[0], plan.derivations[mode]
    if hg.name not in plan.stored_groups or hg.shared is not None:
        return {}
    out = {}
    for k, (fn, v) in slots.items():
        u = plan.resolve(hg.members[k][1])
        terms = [rewrite(plan, t.expr) for t in d.grads.get(u, ())]
        want = {ActDerivOut(_act(fn), v), Grad(v)}
        if (len(terms) == 1 and isinstance(terms[0], Had) and set(terms[0].args) == want
                and plan.home.get(u) == ("group", hg, k) and v not in plan.home
                and v not in plan.alias):
            out[k] = (fn, v, u)
    gone = {u for _, _, u in out.values()}
    readers = []            # what the step reads besides the deltas themselves
    for w in d.order:
        if w not in plan.alias and w not in gone:
            readers += [rewrite(plan, t.expr) for t in d.grads[w]
                        if not (t.via is not None and t.via.time == 1)]
    for ts in d.carry.values():     # the stacked carry GEMM reads the buffer after the deltas
        readers += collapse(plan, [rewrite(plan, t.expr) for t in ts],
                            lambda g: Code(g.dbuffer, g.vec.shape))
    if any(isinstance(n, Grad) and n.of.at(0) in gone for e in readers for n in e.walk()):
        return {}
    return out


def _act(name):
    from lstmsym import ops
    return getattr(ops, name)


def _wide_backward_lines(plan, wide) -> list:
    """f'(v) o dv for the wide slots: y y, then y - y y (sigmoid) or 1 - y y (tanh)."""
    hg, pr = plan.wide[0][0], NumpyPrinter()

    def cols(buf, k0, k1):
        whole = k0 == 0 and k1 == len(hg.members) - 1
        return buf if whole else f"{buf}[:, {hg.slices[k0][0]}:{hg.slices[k1][1]}]"

    dact = f"d{hg.name}_act"
    out = [Comment("the deltas of these gates at once, y the gate output:\n"
                   "sigmoid'(z) = y - y * y, tanh'(z) = 1 - y * y\n" + "\n".join(
                       f"{code_name(v)} = {pr.doprint(_original(plan, v))}"
                       for _, v, _ in (wide[k] for k in sorted(wide))))]
    for k0, k1 in _ranges(wide):
        y, dz = cols(hg.buffer, k0, k1), cols(hg.dbuffer, k0, k1)
        out.append(Stmt(call("np.multiply", y, y, out=dz)))
    for fn in ("sigmoid", "tanh"):
        for k0, k1 in _ranges(k for k in wide if wide[k][0] == fn):
            y, dz = cols(hg.buffer, k0, k1), cols(hg.dbuffer, k0, k1)
            out.append(Stmt(call("np.subtract", y if fn == "sigmoid" else "1.0", dz, out=dz)))
    for k0, k1 in _ranges(wide):
        dz = cols(hg.dbuffer, k0, k1)
        out.append(Stmt(call("np.multiply", dz, cols(dact, k0, k1), out=dz)))
    return out


def window_function(plan, mode) -> Function:
    from lstmsym.codegen import collapse, rewrite
    ncell, d = plan.ncell, plan.derivations[mode]
    step_names = Names(plan, window=False)
    pr = NumpyPrinter(names=step_names)
    body = [Assign("x", 'cache["x"]'), Assign("end, loss_start, floor, only_pass", "span"),
            Assign("d_params, d_x, d_state0", "grads")]
    body.append(Assign("T, B, sizes", call("check_inputs", "params", "x", "None")))
    body += _dims(plan) + _params(plan) + _stacks(plan)
    seqs = [_seq(s.name) for s in ncell.states]
    seqs += [_seq(e.target.name) for e in ncell.equations if e.target in plan.stored]
    seqs += [_seq(g.buffer) for g in plan.groups if g.name in plan.stored_groups]
    body += [Assign(s, f'cache["{s}"]') for s in seqs]
    body += [Assign(_seq(g.dbuffer), f'work["{_seq(g.dbuffer)}"]') for g in plan.groups
             if g.shared is None]
    body += [Assign(name, f'work["{name}"]') for v, (kind, name, _) in
             sorted(plan.home.items(), key=lambda kv: kv[0].name) if kind == "seq"]
    body += [Assign(f"d{s.name}_out_seq", f'd_out["{s.name}"]') for s in ncell.states]
    body.append(Comment("gradient arriving at each state from the step after (d_final at the "
                        "end)"))
    for s in ncell.states:
        body.append(If(f'final is not None and "{s.name}" in final',
                       [Assign(f"d{s.name}_from_next", f'final["{s.name}"].copy()')],
                       [Assign(f"d{s.name}_from_next",
                               call("np.zeros", f"(B, {_size(s.shape)})", "dtype=x.dtype"))]))

    # one step of the backward pass: every gradient computed in place into its buffer
    pool = ScratchPool("work")
    emitter = UfuncEmitter(pr, pool)
    step, needed, buffers = [], [], []
    homes = {h[1].name for h in plan.home.values() if h[0] == "group"}
    for g in plan.groups:
        if g.shared is None and (g.per_step or g.name in homes):
            step.append(Assign(g.dbuffer, f"{_seq(g.dbuffer)}[t]"))
    for s in ncell.states:
        step.append(Assign(f"d{s.name}_out", f"d{s.name}_out_seq[t] if d{s.name}_out_seq is not "
                                             "None and t >= loss_start else None"))
    wide = wide_backward(plan, mode)
    wide_out = {v: k for k, (_, v, _) in wide.items()}
    wide_pre = {u for _, _, u in wide.values()}
    if wide:
        hg = plan.wide[0][0]
        step.append(Assign(hg.buffer, f"{_seq(hg.buffer)}[t]"))
        buffers.append(Assign(f"d{hg.name}_act", call("np.empty", f"(B, {hg.rows})",
                                                      "dtype=x.dtype")))
    grad_lines = []
    for v in d.order:
        if v in plan.alias or v in wide_pre:
            continue
        terms = []
        for t in d.grads[v]:
            if t.via is not None and t.via.time == 1 or isinstance(t.expr, OutGrad):
                continue
            terms.append(rewrite(plan, t.expr))
        if v.role == "state":
            terms.append(Code(f"d{v.name}_from_next", v.shape))
        terms = collapse(plan, terms, lambda g: Product(g.dbuffer, g.weights, g.vec.shape))
        outgrad = v.role == "state" and any(isinstance(t.expr, OutGrad) for t in d.grads[v])
        expr = add(Zero(v.shape), *terms)
        needed.append(expr)
        vias = [t.via for t in d.grads[v] if t.via is not None and t.via.time == 0]
        lines = _quote(plan, vias)
        if v.role == "state":
            lines.append("(plus the output gradient at t and what step t+1 sends back)")
        grad_lines.append(Comment("\n".join(lines)))
        name = "d" + code_name(v)
        home = plan.home.get(v)
        if v in wide_out:
            hg, k = plan.wide[0][0], wide_out[v]
            buffers.append(Assign(name, f"d{hg.name}_act[:, {_slice(hg, k)}]" if _slice(hg, k)
                                  else f"d{hg.name}_act"))
        elif home is None:
            buffers.append(Assign(name, call("np.empty", f"(B, {_size(v.shape)})",
                                             "dtype=x.dtype")))
        else:
            kind, where, k = home
            if kind == "seq":
                grad_lines.append(Assign(name, f"{where}[t]"))
            else:
                sl = _slice(where, k)
                grad_lines.append(Assign(name, f"{where.dbuffer}[:, {sl}]" if sl
                                         else where.dbuffer))
        atom = emitter.atom(expr)
        if outgrad and atom is not None:     # one pass either way
            grad_lines.append(If(f"d{v.name}_out is not None",
                                 [Stmt(call("np.add", atom, f"d{v.name}_out", out=name))],
                                 [Stmt(call("np.copyto", name, atom))]))
        else:
            grad_lines += [Stmt(line) for line in emitter.emit(expr, name)]
            if outgrad:
                grad_lines.append(If(f"d{v.name}_out is not None",
                                     [Stmt(call("np.add", name, f"d{v.name}_out", out=name))]))
        for g, k, r in plan.copies:
            if r == v and g.per_step:
                sl = _slice(g, k)
                grad_lines.append(Stmt(call("np.copyto", f"{g.dbuffer}[:, {sl}]" if sl
                                            else g.dbuffer, name)))
    if wide:
        grad_lines += _wide_backward_lines(plan, wide)
    carry_lines = []
    for s in ncell.states:
        terms = [rewrite(plan, t.expr) for t in d.carry[s.name]]
        terms = collapse(plan, terms, lambda g: Product(g.dbuffer, g.weights, g.vec.shape))
        lines = _quote(plan, [t.via for t in d.carry[s.name]])
        carry_lines.append(Comment(f"to step t-1 through {s.name}_prev"
                                   + ("".join("\n" + q for q in lines))))
        if terms:
            expr = add(Zero(s.shape), *terms)
            needed.append(expr)
            carry_lines += [Stmt(line) for line in emitter.emit(expr, f"d{s.name}_from_next")]
        else:
            carry_lines.append(Assign(f"d{s.name}_from_next[...]", "0.0"))
    leaves = set()
    for e in needed:
        leaves |= {n for n in e.walk() if isinstance(n, Sym) and n.role in ("state", "var")}
    order = [s.at(-1) for s in ncell.states] + [e.target for e in ncell.equations]
    step += [_binding(plan, s) for s in order if s in leaves]
    step += grad_lines + carry_lines
    body.append(Comment("gradient and work buffers, reused at every step"))
    body += buffers
    body += [Assign(name, call("np.empty", f"(B, {dim})", "dtype=x.dtype"))
             for dim, name in pool.made]
    body.append(For("t", "range(end, floor - 1, -1)", step))
    body.append(Comment("the state gradient that reaches the start of the sequence"))
    body.append(If("floor == 0", [AugAssign(f'd_state0["{s.name}"]', "+",
                                            f"d{s.name}_from_next") for s in ncell.states]))
    body += window_sums(plan, mode)
    doc = (f"One backward pass ({MODES[mode]} gradient) over steps end..floor; output "
           "gradients from\nsteps loss_start..end. Adds into d_params, d_x and d_state0.")
    return Function(f"backward_window_{MODES[mode]}",
                    ["params", "cache", "d_out", "final", "work", "span", "grads"], doc, body)


def window_sums(plan, mode) -> list:
    """Parameter and input gradients of the window's steps, as GEMMs over all of them."""
    from lstmsym.codegen import collapse, rewrite
    d = plan.derivations[mode]
    names = Names(plan, window=True)
    pr = NumpyPrinter(names=names, window=True)
    out = [Comment("parameter and input gradients of steps floor..end, over all of them at "
                   "once"), Assign("lo, hi", "floor, end + 1")]
    # copies into the input group's buffer, adjacent columns from adjacent columns at once
    copies = [(g, k, plan.home[r]) for g, k, r in plan.copies if not g.per_step]
    while copies:
        g, k, (kind, src, j) = copies.pop(0)
        k1, j1 = k, j
        while copies and kind == "group" and copies[0][0] is g and copies[0][1] == k1 + 1 \
                and copies[0][2] == ("group", src, j1 + 1):
            copies.pop(0)
            k1, j1 = k1 + 1, j1 + 1
        if kind == "group":
            source = f"{_seq(src.dbuffer)}[lo:hi, :, {src.slices[j][0]}:{src.slices[j1][1]}]"
        else:
            source = f"{src}[lo:hi]"
        out.append(Assign(f"{_seq(g.dbuffer)}[lo:hi, :, {g.slices[k][0]}:{g.slices[k1][1]}]",
                          source))
    # a parameter term equal to a stored gradient reads that gradient
    known = {}
    for v, ts in d.grads.items():
        if v.role != "state" and plan.home.get(v) is not None and v not in plan.alias:
            known[add(Zero(v.shape), *[rewrite(plan, t.expr) for t in ts])] = Grad(v)
    params = {p: [known.get(rewrite(plan, t.expr), rewrite(plan, t.expr)) for t in ts]
              for p, ts in d.params.items()}
    for g in plan.groups:
        wanted = [Outer(Grad(plan.resolve(q)), g.vec) for p, q in g.members]
        if not all(w in params[p.name] for w, (p, _) in zip(wanted, g.members)):
            continue
        for w, (p, _) in zip(wanted, g.members):
            params[p.name].remove(w)
        product = call("outer_sum", f"{_seq(g.dbuffer)}[lo:hi]", names(g.vec))
        if len(g.members) == 1:
            out.append(AugAssign(f'd_params["{g.members[0][0].name}"]', "+", product))
            continue
        out.append(Assign(f"d{g.weights}", product))
        for k, (p, _) in enumerate(g.members):
            out.append(AugAssign(f'd_params["{p.name}"]', "+",
                                 f"d{g.weights}[{g.slices[k][0]}:{g.slices[k][1]}]"))
    # biases: one column sum per gradient buffer, split by member
    for g in plan.groups:
        if g.shared is not None:
            continue
        owners = [(k, p) for k, (_, q) in enumerate(g.members)
                  for p in plan.ncell.params if len(p.shape) == 1
                  and params[p.name] == [Grad(plan.resolve(q))]]
        if len(owners) < 2:
            continue
        name = f"sum_{g.dbuffer}"
        out.append(Assign(name, f"{_seq(g.dbuffer)}[lo:hi].reshape(-1, {g.rows}).sum(axis=0)"))
        for k, p in owners:
            params[p.name] = []
            out.append(AugAssign(f'd_params["{p.name}"]', "+",
                                 f"{name}[{g.slices[k][0]}:{g.slices[k][1]}]"))
    for p in plan.ncell.params:
        terms = params[p.name]
        if not terms:
            continue
        value = pr.doprint(add(Zero(p.shape), *terms))
        if len(p.shape) == 1:
            value = call("np.sum", value, "axis=(0, 1)")
        out.append(AugAssign(f'd_params["{p.name}"]', "+", value))
    for x in plan.ncell.inputs:
        terms = [rewrite(plan, t.expr) for t in d.inputs[x.name]]
        stacked = []
        terms = collapse(plan, terms, lambda g: stacked.append(g) or call(
            "seq_matmul", f"{_seq(g.dbuffer)}[lo:hi]", g.weights))
        if not terms:
            continue
        accumulate = AugAssign("d_x[lo:hi]", "+", pr.doprint(add(Zero(x.shape), *terms)))
        if len(terms) == 1 and stacked:
            # the only backward pass: d_x is still zero, so the GEMM writes it directly
            g = stacked[0]
            out.append(If("only_pass and lo == 0", [Stmt(call(
                "np.matmul", f"{_seq(g.dbuffer)}.reshape(-1, {g.rows})", g.weights,
                out=f"d_x.reshape(-1, {x.shape[0]})"))], [accumulate]))
        else:
            out.append(accumulate)
    return out


# ----- the module ---------------------------------------------------------------------------------
def module_docstring(plan, dtype, command) -> str:
    from lstmsym import __version__
    cell = plan.cell
    pr = NumpyPrinter()
    lines = [f"NumPy kernel for the {cell.name!r} cell, generated by lstmsym: do not edit.", ""]
    if cell.description:
        lines += [cell.description + ".", ""]
    lines += ["Source: " + cell.source, "", "Forward equations of one step (batch-major: a row per "
              "sequence, W v is v @ W.T):", ""]
    for eq in cell.equations:
        lines.append(f"    {code_name(eq.target)} = {pr.doprint(eq.expr)}")
    lines += ["", "Contract: PARAMS (name -> shape in I, H), STATES, init_params(input_size, "
              "hidden_size, seed=0, dtype), forward(params, x, state0=None) -> (outputs, cache), "
              "backward(params, cache, d_outputs, d_final=None, truncate=None) -> (d_params, "
              "d_x, d_state0); truncate: None, k, (k1, k2) or \"1997\". Needs only NumPy.", "",
              f"Generated by lstmsym {__version__}. Regenerate with:", "",
              f"    {command or 'lstmsym codegen ' + cell.name}"]
    return "\n".join(_wrap(lines))


def _wrap(lines, width=96):
    import textwrap
    out = []
    for line in lines:
        if line.startswith("    ") or len(line) <= width:
            out.append(line)
        else:
            out.extend(textwrap.wrap(line, width))
    return out


def build_module(plan, dtype, command=None) -> Module:
    from lstmsym.codegen import helper_sources
    ncell = plan.ncell
    params = "{\n" + "".join(f"    {p.name!r}: {tuple(p.shape)!r},\n" for p in ncell.params) + "}"
    body = [Comment("parameter name -> shape, in the input size I and the hidden size H"
                    + (" (and DIMS)" if plan.dims else "")),
            Assign("PARAMS", params),
            Comment("carried states, h first"),
            Assign("STATES", repr(tuple(ncell.state_names))),
            Comment("extra dimensions: name -> (base, factor), size = base // factor"),
            Assign("DIMS", repr(dict(sorted(plan.dims.items())))),
            Comment("parameters with a constant initial value (init_params)"),
            Assign("INIT", repr(dict(sorted(plan.cell.init.items())))),
            Assign("DTYPE", f"np.{dtype}")]
    body += [Comment("arrays of earlier calls that empty_seq may reuse (see there)"),
             Assign("SPARE", "[]"), Assign("SPARE_MAX", "16")]
    body += [Source(s) for s in helper_sources()]
    body += [forward_function(plan), backward_function(plan)]
    body += [window_function(plan, mode) for mode in (None, "1997")]
    return Module(module_docstring(plan, dtype, command), ("import sys", "", "import numpy as np"),
                  tuple(body))
