"""The backward functions of a kernel module: the driver and one window pass per mode.

``backward`` validates its arguments, picks the windows (full BPTT and the 1997 truncation:
one; truncated BPTT: ``windows(T, k1, k2)``) and calls ``backward_window_<mode>`` (exact or
1997) on each. A window function runs one backward pass over steps end..floor, every gradient
computed in place into its buffer (the wide gate deltas from kernel_wide), then adds the
parameter and input gradients of those steps as GEMMs over the whole window
(``window_sums``).
"""
from __future__ import annotations

from lstmsym.expr import Grad, OutGrad, Outer, Sym, Zero, add
from lstmsym.kernel_names import (Names, _binding, _dims, _params, _quote, _seq, _size, _slice,
                                  _stacks)
from lstmsym.kernel_wide import _wide_backward_lines, wide_backward
from lstmsym.naming import code_name
from lstmsym.printing.kernel import (AugAssign, Assign, Comment, For, Function, If, Raise,
                                     Return, call)
from lstmsym.printing.kernel import Expr as Stmt
from lstmsym.printing.numpy_printer import Code, NumpyPrinter, Product, ScratchPool, UfuncEmitter

MODES = {None: "exact", "1997": "1997"}


# ----- the driver --------------------------------------------------------------------------------
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
    direct_d_x = _writes_all_of_d_x(plan)
    if not direct_d_x:
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
    if direct_d_x:
        body.append(Comment("one pass from t = 0 writes all of d_x with one GEMM; "
                            "windows add into it"))
        body.append(If("len(passes) > 1 or passes[0][2] > 0", [Assign("d_x[...]", "0.0")]))
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


# ----- one window --------------------------------------------------------------------------------
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


def _input_gradients(plan, mode) -> list:
    """(input, terms, stacked) per input: its gradient's terms with the products of stacked
    deltas collapsed into one GEMM each, and the groups of those GEMMs."""
    from lstmsym.codegen import collapse, rewrite
    out = []
    for x in plan.ncell.inputs:
        terms = [rewrite(plan, t.expr) for t in plan.derivations[mode].inputs[x.name]]
        stacked = []
        terms = collapse(plan, terms, lambda g: stacked.append(g) or call(
            "seq_matmul", f"{_seq(g.dbuffer)}[lo:hi]", g.weights))
        out.append((x, terms, stacked))
    return out


def _writes_all_of_d_x(plan) -> bool:
    """True when every input's gradient is one GEMM that the only backward pass from t = 0
    writes straight into d_x (``window_sums``), in both window functions (exact and 1997)."""
    return all(len(terms) == 1 and stacked for mode in MODES
               for _, terms, stacked in _input_gradients(plan, mode))


def window_sums(plan, mode) -> list:
    """Parameter and input gradients of the window's steps, as GEMMs over all of them."""
    from lstmsym.codegen import rewrite
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
    for x, terms, stacked in _input_gradients(plan, mode):
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
