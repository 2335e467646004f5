"""Wide gates: pre-activations combined in the stacked buffer and activated all at once.

Gates of the form ``sigmoid``/``tanh`` of (recurrent + input projection + bias) run *wide*
(``wide_activations``, ``wide_backward``): the biases are added to the all-steps input
projection once (``_bias_stacks``, ``_bias_adds``), the input projections are added to the
recurrent ones in a few wide operations per step (``_combined_adds``), one ``np.tanh`` per step
covers every such gate in the stacked buffer (the sigmoid rows of the stacked matrices halved:
sigmoid(z) = 0.5 tanh(z / 2) + 0.5; ``_wide_lines``), the gate outputs stay in that buffer for
the backward pass, and their deltas are one pass over the stacked gradient buffer
(sigmoid' = y - y^2, tanh' = 1 - y^2; ``_wide_backward_lines``).

This module plans which gates qualify and builds those statements; kernel_build places them in
``forward`` and kernel_backward in the backward step.
"""
from __future__ import annotations

from lstmsym.expr import Act, Add, Grad, Had, Sym
from lstmsym.kernel_names import _original, _seq
from lstmsym.naming import code_name
from lstmsym.printing.kernel import Assign, Comment, call
from lstmsym.printing.kernel import Expr as Stmt
from lstmsym.printing.numpy_printer import ActDerivOut, Code, NumpyPrinter


# ----- which gates run wide ----------------------------------------------------------------------
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
    # an input projection that is not combined keeps its own summand; a bias added next to it
    # goes into its column of the all-steps projection once, before the loop
    plan.bias_folds.clear()
    for k, (_, p) in enumerate(xg.members):
        eq = owner.get(p)
        if (k < len(ok) and ok[k][0]) or eq is None or p in plan.used:
            continue
        bias = next((a for a in eq.expr.args if isinstance(a, Sym) and a.role == "param"
                     and len(a.shape) == 1 and a.shape == p.shape), None)
        if bias is not None:
            removed.setdefault(eq.target, []).append(bias)
            plan.bias_folds.append((k, bias))
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


# ----- forward statements ------------------------------------------------------------------------
def _ranges(keys) -> list:
    """Maximal runs (k0, k1) of consecutive integers."""
    out = []
    for k in sorted(keys):
        if out and out[-1][1] == k - 1:
            out[-1] = (out[-1][0], k)
        else:
            out.append((k, k))
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


def _bias_folds(plan, buffer) -> list:
    """The biases that sit next to an input projection that is not combined (``_combine``),
    added to its column of the all-steps projection ``buffer`` once, before the loop."""
    xg, folds = plan.wide[0][1], plan.bias_folds
    out = [Comment(f"{', '.join(b.name for _, b in folds)}: added once, beside "
                   f"{'its' if len(folds) == 1 else 'their'} input projection")] if folds else []
    return out + [Stmt(call("np.add", f"{buffer}[:, :, {xg.slices[k][0]}:{xg.slices[k][1]}]",
                            bias.name, out=f"{buffer}[:, :, {xg.slices[k][0]}:{xg.slices[k][1]}]"))
                  for k, bias in folds]


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


# ----- backward statements -----------------------------------------------------------------------
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
