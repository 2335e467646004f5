"""Build the code tree of a kernel module from a plan (codegen.plan_kernel).

Three generated functions carry the cell: ``forward`` (input projections of all steps as one
GEMM, then the equations step by step), and one ``backward_window_<mode>`` per backward mode
(exact and the 1997 truncation), which runs one backward pass over steps end..floor and then
adds the parameter and input gradients of those steps as GEMMs over the whole window.
``backward`` validates, picks the windows (full BPTT: one) and calls it.

This module builds ``forward`` and assembles the module (docstring, constants, runtime helpers,
functions). The parts live beside it: kernel_names.py (where values live, the names and
statements all functions share), kernel_wide.py (gates activated at once in the stacked
buffer, forward and backward), kernel_backward.py (``backward`` and the window functions).
"""
from __future__ import annotations

import numpy  # noqa: F401  (the kernel's only dependency; imported here to fail early)

from lstmsym.expr import Act, add
from lstmsym.kernel_backward import backward_function, window_function
from lstmsym.kernel_names import (Names, _dims, _original, _params, _seq, _size, _slice,
                                  _stacks)
from lstmsym.kernel_wide import (_bias_adds, _bias_folds, _bias_stacks, _combined_adds,
                                 _wide_lines, wide_activations)
from lstmsym.naming import code_name
from lstmsym.printing.kernel import (Assign, Comment, For, Function, If, Module, Return,
                                     Source, call)
from lstmsym.printing.kernel import Expr as Stmt
from lstmsym.printing.numpy_printer import NumpyPrinter, ScratchPool, UfuncEmitter


# ----- forward -----------------------------------------------------------------------------------
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
                        + (" (rows of sigmoid gates halved)" if halves else "")
                        + ";\nthe recurrent ones also transposed into memory order (see transposed)"))
    body += _stacks(plan, halved, transposed=True) + _bias_stacks(pair, runs, halves)
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
                body += _bias_adds(pair, runs, dest) + _bias_folds(plan, dest)
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
                    loop.append(Stmt(call("np.matmul", pr.doprint(g.vec), f"{g.weights}_T",
                                          out=recurrent)))
                    loop.append(Comment("added to the input projections (biases included)"))
                    loop.append(Stmt(call("np.add", g.buffer, recurrent, out=g.buffer)))
                else:
                    loop.append(Stmt(call("np.matmul", pr.doprint(g.vec), f"{g.weights}_T",
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


# ----- the module --------------------------------------------------------------------------------
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
