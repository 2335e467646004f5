"""Whole derivation documents for a cell: notation, forward pass, backward step, BPTT variants.

``cell_document(cell)`` builds a document tree (lstmsym.printing.layout) from a cell and its
derivations (lstmsym.derive): every formula is an lstmsym expression printed by
lstmsym.printing.latex, every name comes from lstmsym.naming. ``to_latex``/``to_markdown``
(re-exported here) print it as a standalone LaTeX article or as MathJax-ready Markdown.

Sections (``parts`` selects them):

- ``notation``: every symbol with its code name and meaning;
- ``forward``: one step, pre-activations written inside their activation as the lecture does,
  then defined on their own;
- ``step``: the one-step backward equations — lecture-style closed forms of the state gradients,
  every gate's delta, the step-by-step (delta) form, what step t passes back to t-1, per-step
  parameter gradients, the input gradient;
- ``bptt``: full back-propagation through time (recurrences and sums over t);
- ``tbptt``: truncated BPTT(k1, k2) with the windows of lstmsym.schedule;
- ``1997``: Hochreiter & Schmidhuber's truncated gradient and the terms it drops.

>>> from lstmsym.cells import get_cell
>>> doc = cell_document(get_cell("lstm"), parts=("forward",))
>>> "\\\\sigma\\\\bigl(" in to_latex(doc)
True
"""
from __future__ import annotations

from lstmsym.derive import derive
from lstmsym.expr import Act, BlockSum, Grad, OutGrad, Repeat, Sym
from lstmsym.naming import code_name
from lstmsym.printing.latex import LatexPrinter, latex
from lstmsym.printing.layout import (Align, Code, Display, Document, Link, Math, Paragraph, Row,
                                     Section, Table, to_latex, to_latex_collection, to_markdown)

PARTS = ("notation", "forward", "step", "bptt", "tbptt", "1997")
REGENERATE = "lstmsym derive --all -o derivations/"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("lstmsym")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


# --- small helpers ----------------------------------------------------------------------------
def _terms(e, **settings) -> tuple:
    return tuple(LatexPrinter(settings).signed_terms(e))


def _row(lhs, e, **settings) -> Row:
    return Row(lhs if isinstance(lhs, str) else latex(lhs, **settings), _terms(e, **settings))


def _contribution(q) -> str:
    r"""``\left[\nabla_{q}\mathrm{Div}\right]_{t}``: the part of a gradient that step t sends."""
    return r"\left[%s\right]_{t}" % latex(Grad(q))


def _shape(shape) -> str:
    return r" \times ".join(shape)


def _P(*parts) -> Paragraph:
    """A paragraph; inside our own string parts, ``$...$`` marks inline math."""
    out = []
    for p in parts:
        if isinstance(p, str):
            for k, piece in enumerate(p.split("$")):
                if piece:
                    out.append(Math(piece) if k % 2 else piece)
        else:
            out.append(p)
    return Paragraph(tuple(out))


def _M(e) -> Math:
    return Math(e if isinstance(e, str) else latex(e))


def _math_list(texts) -> tuple:
    """Inline formulas separated by commas, each its own math (so lines can break between)."""
    out = []
    for k, tex in enumerate(texts):
        out += ([", "] if k else []) + [Math(tex)]
    return tuple(out)


def _activations(cell) -> list:
    seen = {}
    for eq in cell.equations:
        for n in eq.expr.walk():
            if isinstance(n, Act):
                seen.setdefault(n.fn.name, n.fn)
    return list(seen.values())


def _uses(cell, kind) -> list:
    return [n for eq in cell.equations for n in eq.expr.walk() if isinstance(n, kind)]


def _preacts(cell) -> dict:
    """Gate name -> the equation of its pre-activation."""
    return {e.preact_of: e for e in cell.equations if e.preact_of}


# --- notation ---------------------------------------------------------------------------------
def notation_section(cell, d) -> Section:
    rows = []
    for x in cell.inputs:
        rows.append(((_M(x),), (Code(code_name(x)),), (f"input at step t, size {x.shape[0]}",)))
    for s in cell.states:
        out = ", an output at every step" if s.name in cell.outputs else ""
        label = cell.equation(s.name).label
        rows.append(((_M(s), ", ", _M(s.prev)), (Code(code_name(s)), ", ",
                                                  Code(code_name(s.prev))),
                     ((label + ": " if label else "") + f"carried state{out}, size "
                      f"{s.shape[0]}, at t and t-1",)))
    pre = {e.target.name: e.preact_of for e in cell.equations if e.preact_of}
    states = set(cell.state_names)
    for eq in cell.equations:
        v = eq.target
        if v.name in states:
            continue
        if v.name in pre:
            what = ("pre-activation of ", _M(cell.equation(pre[v.name]).target),
                    "; its gradient is the gate's delta")
        elif isinstance(eq.expr, Act) and isinstance(eq.expr.arg, Sym):
            what = (eq.label or "gate" if eq.expr.fn.name == "sigmoid" else
                    eq.label or "activation", ": ", _M(eq.expr))
        else:
            what = (eq.label or "intermediate",)
        rows.append(((_M(v),), (Code(code_name(v)),), what + (f" (size {v.shape[0]})",)))
    for p in cell.params:
        init = cell.init.get(p.name)
        extra = f"; initialised to {init}" if isinstance(init, (int, float)) else ""
        rows.append(((_M(p),), (Code(code_name(p)),), ("parameter, ", _M(_shape(p.shape)), extra)))
    rows.append(((_M(r"\nabla_{v}\mathrm{Div}"),), (Code("dv"),),
                 ("total gradient of the divergence with respect to v: every path, through "
                  "later steps too (lecture notation)",)))
    for s in d.outputs:
        o = OutGrad(cell.state(s))
        rows.append(((_M(o),), (Code(code_name(o)),),
                     ("the part of ", _M(Grad(cell.state(s))), " that arrives directly from "
                      "the output at step t (the loss term of step t)",)))
    rows.append(((_M(_contribution(Sym("v", "var", ("H",), -1))),), ("",),
                 ("the terms step t sends back to a gradient (to the previous state, or to a "
                  "parameter gradient, which sums them over t)",)))
    rows.append(((_M(r"a \circ b"),), (Code("a * b"),), ("Hadamard (elementwise) product",)))
    rows.append(((_M(r"W v"),), (Code("W @ v"),),
                 ("matrix times column vector; ", _M(r"W^{\top}"), " its transpose",)))
    rows.append(((_M(r"u\, v^{\top}"),), (Code("outer(u, v)"),),
                 ("outer product (gradient of a matrix in an affine map)",)))
    for fn in _activations(cell):
        rows.append(((_M(fn.latex), ", ", _M(fn.latex + "'")), (Code(fn.name),),
                     (fn.description or fn.name, "; ", _M(fn.latex + "'"),
                      " its derivative, taken at the point in parentheses",)))
    if _uses(cell, Repeat) or _uses(cell, BlockSum):
        rows.append(((_M(r"v \otimes \mathbf{1}_{k}"),), (Code("repeat(v, k)"),),
                     ("each entry of v repeated k times: a gate shared by the k cells of a "
                      "memory-cell block",)))
        rows.append(((_M(r"\left(I \otimes \mathbf{1}_{k}^{\top}\right) u"),),
                     (Code("blocksum(u, k)"),), ("sum of each run of k entries (the adjoint "
                                                 "of the repetition)",)))
    rows.append(((_M(r"\mathbf{1}"),), ("",), ("vector of ones",)))
    dims = ", ".join(f"{k} = {v[0]}/{v[1]}" for k, v in cell.dims.items()
                     if isinstance(v, tuple) and len(v) == 2)
    sizes = ("Sizes: H hidden, I input" + (f", {dims}" if dims else "") + ". Vectors are "
             "columns.")
    return Section("Notation", (_P(sizes), Table(
        (("symbol",), ("code",), ("meaning",)), tuple(rows))))


# --- forward ----------------------------------------------------------------------------------
def forward_rows(cell) -> tuple:
    """One row per equation, with each split pre-activation written back inside its gate."""
    pre = _preacts(cell)
    rows = []
    for eq in cell.equations:
        if eq.preact_of:
            continue
        p = pre.get(eq.target.name)
        if p is not None and isinstance(eq.expr, Act) and eq.expr.arg == p.target:
            terms = list(_terms(p.expr))
            head = eq.expr.fn.latex + r"\bigl("
            sign, first = terms[0]
            terms[0] = ("+", head + ("-" if sign == "-" else "") + first)
            terms[-1] = (terms[-1][0], terms[-1][1] + r"\bigr)")
            rows.append(Row(latex(eq.target), tuple(terms)))
        else:
            rows.append(_row(eq.target, eq.expr))
    return tuple(rows)


def forward_section(cell) -> Section:
    blocks = [_P("One step $t$, from the previous states and the input $x_{t}$:"),
              Align(forward_rows(cell))]
    pre = [e for e in cell.equations if e.preact_of]
    if pre:
        blocks += [_P("The pre-activations, named because the backward pass refers to them "
                      "(the gradient with respect to a pre-activation is that gate's delta):"),
                   Align(tuple(_row(e.target, e.expr) for e in pre))]
    return Section("Forward pass", tuple(blocks))


# --- one backward step ------------------------------------------------------------------------
def step_section(cell, d) -> Section:
    states = [v for v in d.order if v.name in cell.state_names]
    pre = [e.target for e in cell.equations if e.preact_of]
    given = _math_list(latex(OutGrad(cell.state(s))) for s in d.outputs)
    later = _math_list(latex(Grad(s.at(1))) for s in cell.states)
    blocks = [
        _P("Given the output gradients ", *(given or ("(none)",)),
           " of step $t$ and the gradients ", *later, " of step $t+1$, step $t$ of the backward "
              "pass computes the following. Every formula holds for any hidden size, input "
              "size and sequence length: nothing is unrolled."),
        Section("State gradients (lecture form)", (
            _P("With the gradients of intermediates substituted away, so that only state "
               "gradients (at $t$ and $t+1$) and output gradients remain:"),
            Align(tuple(_row(Grad(s), d.closed_form(s.name)) for s in states)))),
    ]
    if pre:
        blocks.append(Section("Gate deltas", (
            _P("The gradient with respect to each pre-activation, in terms of the state "
               "gradients of step t:"),
            Align(tuple(_row(Grad(v), d.closed_form(v.name)) for v in pre)))))
    blocks.append(Section("Step by step (delta form)", (
        _P("In the order the backward pass computes them (the forward equations in reverse):"),
        Align(tuple(_row(Grad(v), d.grad(v)) for v in d.order)))))
    blocks.append(Section("Passed back to step t-1", (
        _P("The terms step t contributes to the gradients of the previous states (the "
           "terms from step $t+1$ above, one step earlier):"),
        Align(tuple(_row(_contribution(s.prev), d.carry_expr(s.name)) for s in cell.states)))))
    blocks.append(Section("Parameter gradients (contribution of step t)", (
        Align(tuple(_row(_contribution(p), d.param_grad(p.name)) for p in cell.params)),)))
    blocks.append(Section("Input gradient", (
        Align(tuple(_row(Grad(x), d.input_grad(x.name)) for x in cell.inputs)),)))
    return Section("Backward pass, one step" + (" (1997 truncation)" if d.truncation else ""),
                   tuple(blocks))


# --- sequences --------------------------------------------------------------------------------
def _sum_over(e, lower="t=1", upper="T", **settings) -> tuple:
    printer = LatexPrinter(settings)
    from lstmsym.printing.latex import PREC_HAD
    return (("+", r"\sum_{%s}^{%s} %s" % (lower, upper, printer.paren(e, PREC_HAD))),)


def _state_recurrence(cell, d, s, out_prefix="", **settings) -> Row:
    terms = []
    for t in d.grads[s]:
        if isinstance(t.expr, OutGrad):
            terms.append(("+", out_prefix + latex(t.expr, **settings)))
        else:
            terms.extend(_terms(t.expr, **settings))
    return Row(latex(Grad(s), **settings), tuple(terms))


def bptt_section(cell, d) -> Section:
    states = [v for v in d.order if v.name in cell.state_names]
    return Section("Full BPTT over a sequence", (
        _P("The forward pass runs over $t = 1, \\dots, T$ and keeps every step's values. The "
           "backward pass runs the step above for $t = T, T-1, \\dots, 1$ with these "
           "recurrences; at $t = T$ the gradients of step $T+1$ are zero (plus the gradient of "
           "the loss with respect to the final state, if it has one):"),
        Align(tuple(_state_recurrence(cell, d, s) for s in states)),
        _P("Parameters are shared by all steps, so their gradients are sums over $t$:"),
        Align(tuple(Row(latex(Grad(p)), _sum_over(d.param_grad(p.name)))
                    for p in cell.params)),
        _P("The gradient with respect to each initial state is what step 1 passes back, ",
           *_math_list(_contribution(s.prev) for s in cell.states), " at $t = 1$; the input "
           "gradient ", *_math_list(latex(Grad(x)) for x in cell.inputs),
           " is the one-step formula at each $t$."),
    ))


def tbptt_section(cell, d, k1=None, k2=None) -> Section:
    K1 = "k_1" if k1 is None else str(k1)
    K2 = "k_2" if k2 is None else str(k2)
    states = [v for v in d.order if v.name in cell.state_names]
    mark = {"grad_mark": "(c)"}
    rows = [_state_recurrence(cell, d, s, out_prefix=r"[\,t \ge s_c\,]\, ", **mark)
            for s in states]
    blocks = [
        _P("Truncated BPTT(", _M(K1), ", ", _M(K2), ") as in the lecture notes (seed 002) and ",
           Code("lstmsym.schedule"), ": states are carried forward over the whole sequence, "
           "but every ", _M(K1), " steps one backward pass runs through at most ", _M(K2),
           " steps. Chunk $c = 0, 1, \\dots$ covers the steps"),
        Align((Row("s_c", (("+", r"c\,%s + 1" % K1),)),
               Row("e_c", (("+", r"\min\bigl((c+1)\,%s,\ T\bigr)" % K1),)),
               Row("b_c", (("+", r"\max\bigl(1,\ (c+1)\,%s - %s + 1\bigr)" % (K1, K2)),)))),
        _P("When the forward pass reaches $e_c$, pass $c$ takes the output gradients of the "
           "chunk's steps ($t \\ge s_c$) and runs the recurrences of full BPTT for "
           "$t = e_c, \\dots, b_c$, starting from zero gradients at step $e_c + 1$ (the last "
           "pass, $e_c = T$, adds the final-state gradient). Nothing flows below step $b_c$. ",
           _M(r"[\,t \ge s_c\,]"), " is 1 when $t$ is in the chunk, else 0; ",
           _M(r"\nabla^{(c)}"), " is a gradient within pass $c$:"),
        Align(tuple(rows)),
        _P("Each pass adds its steps' contributions to the parameter gradients: for every "
           "parameter $\\theta$, with the one-step contribution ",
           _M(r"\left[\nabla^{(c)}_{\theta}\mathrm{Div}\right]_{t}"),
           " of the step section evaluated with the gradients of pass $c$,"),
        Align((Row(r"\nabla_{\theta}\mathrm{Div}", (("+", r"\sum_{c} \sum_{t=b_c}^{e_c} "
                   r"\left[\nabla^{(c)}_{\theta}\mathrm{Div}\right]_{t}"),)),) + tuple(
            Row(latex(Grad(p)), (("+", r"\sum_{c} %s" % _sum_over(
                d.param_grad(p.name), "t=b_c", "e_c", **mark)[0][1]),))
            for p in cell.params[:1])),
        _P("for example, and likewise for the other parameters."),
        _P("The input gradient at step t sums the passes whose window contains t, and the "
           "gradient with respect to each initial state comes from the passes with ",
           _M("b_c = 1"), " (what their step 1 passes back)."),
        _P("With ", _M(r"k_1 = k_2 = k"), " this is a forward pass that cuts the gradient at "
           "the states every k steps. The step formulas are the same as in full BPTT; only "
           "the windows change, so the derivation again has no sizes and no unrolling."),
    ]
    return Section("Truncated BPTT", tuple(blocks))


def truncation1997_section(cell, exact, tr) -> Section:
    pre = [e for e in cell.equations if e.preact_of]
    intro = _P("Hochreiter & Schmidhuber (1997, Sec. 4 and App. A.2) truncate the gradient: "
               "errors arriving at the net inputs of gates and cells (the pre-activations) "
               "are not propagated back to the previous step's states; only the constant "
               "error carousel carries error back. The truncated rule is derived with ",
               Code('derive(cell, truncation="1997")'), ".")
    if not pre:
        return Section("The 1997 truncation", (intro, _P(
            "This cell has no pre-activations, so the truncation drops nothing: the "
            "truncated gradient is the exact one."),))
    mark = {"grad_mark": r"\mathrm{1997}"}
    exact_rows, kept_rows = [], []
    for s in cell.states:
        kept = {t.expr for t in tr.carry[s.name]}
        terms = []
        for t in exact.carry[s.name]:
            for sign, tex in _terms(t.expr):
                terms.append((sign, tex if t.expr in kept else r"\boxed{%s}" % tex))
        exact_rows.append(Row(_contribution(s.prev), tuple(terms)))
        kept_rows.append(_row(r"\left[%s\right]_{t}" % latex(Grad(s.prev), **mark),
                              tr.carry_expr(s.name), **mark))
    states = [v for v in tr.order if v.name in cell.state_names]
    return Section("The 1997 truncation", (
        intro,
        _P("Exact gradient: what step t passes back to the previous states. The boxed terms "
           "are the ones the truncation drops:"),
        Align(tuple(exact_rows)),
        _P("Truncated: what step t passes back (", _M(r"\nabla^{\mathrm{1997}}"),
           " marks truncated gradients, which are not the exact ones):"),
        Align(tuple(kept_rows)),
        _P("The truncated state gradients (lecture form):"),
        Align(tuple(_row(Grad(s), tr.closed_form(s.name), **mark) for s in states)),
        _P("Gate deltas and parameter gradients keep the formulas of the exact step, with "
           "these truncated state gradients in place of the exact ones."),
    ))


# --- the whole document -----------------------------------------------------------------------
def header_blocks(cell, truncation=None) -> tuple:
    blocks = []
    if cell.description:
        blocks.append(_P(cell.description + "."))
    if cell.source:
        blocks.append(_P("Source: " + cell.source + "."))
    if truncation:
        blocks.append(_P("The backward sections use the 1997 truncated gradient, not the exact "
                         "one."))
    blocks.append(_P("The derivation is at vector level and has no sizes: the hidden size, the "
                     "input size and the sequence length never enter it, and nothing is "
                     "unrolled. Generated by lstmsym " + _version() + " (",
                     Code(f"lstmsym derive {cell.name}"), "); regenerate the derivations "
                     "folder with ", Code(REGENERATE), "."))
    return tuple(blocks)


def cell_document(cell, truncation=None, parts=PARTS, k1=None, k2=None) -> Document:
    """The derivation document of a cell.

    Arguments:
        cell: a ``Cell`` or a registered name.
        truncation: ``None`` (exact gradient) or ``"1997"``.
        parts: which sections to include, from ``PARTS``.
        k1, k2: numbers for the truncated-BPTT section (symbols when ``None``).

    Returns:
        a ``Document`` (print it with ``to_latex`` or ``to_markdown``).
    """
    from lstmsym.cells import get_cell
    cell = get_cell(cell)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        from lstmsym.errors import LstmsymError
        raise LstmsymError(f"unknown document part {unknown[0]!r}; use: {', '.join(PARTS)}")
    d = derive(cell, truncation=truncation)
    blocks = list(header_blocks(cell, truncation))
    if "notation" in parts:
        blocks.append(notation_section(cell, d))
    if "forward" in parts:
        blocks.append(forward_section(cell))
    if "step" in parts:
        blocks.append(step_section(cell, d))
    if "bptt" in parts:
        blocks.append(bptt_section(cell, d))
    if "tbptt" in parts:
        blocks.append(tbptt_section(cell, d, k1, k2))
    if "1997" in parts:
        exact = d if truncation is None else derive(cell)
        tr = d if truncation == "1997" else derive(cell, truncation="1997")
        blocks.append(truncation1997_section(cell, exact, tr))
    return Document(f"{cell.name}: forward and backward equations", tuple(blocks))


def jacobian_document(cell, truncation=None) -> Document:
    """The one-step state Jacobians of a cell (from lstmsym.jacobian) as a document."""
    from lstmsym.cells import get_cell
    from lstmsym.jacobian import jacobian_latex
    cell = get_cell(cell)
    rows = jacobian_latex(cell, truncation=truncation)
    what = " under the 1997 truncation" if truncation else ""
    return Document(f"{cell.name}: one-step state Jacobians", header_blocks(cell, truncation) + (
        _P("How each state at $t$ depends on the states at $t-1$" + what + " (computed by ",
           Code("lstmsym.jacobian"), " from the derivation):"),
        Display(rows)))


def index_document(cells, pdf_name=None) -> Document:
    """The index of a derivations folder: one row per cell with its files and source."""
    from lstmsym.cells import get_cell
    rows = []
    for name in cells:
        cell = get_cell(name)
        rows.append(((Code(name),), (Link(f"{name}.tex", f"{name}.tex"), ", ",
                                     Link(f"{name}.md", f"{name}.md")),
                     (cell.description or "",), (cell.source or "",)))
    blocks = [_P("Forward and backward equations of every cell lstmsym knows (one step, full "
                 "BPTT, truncated BPTT, the 1997 truncation), generated by lstmsym "
                 + _version() + ". Do not edit: regenerate with ", Code(REGENERATE), ".")]
    if pdf_name:
        blocks.append(_P("All of them in one PDF: ", Link(pdf_name, pdf_name), "."))
    blocks.append(Table((("cell",), ("files",), ("description",), ("source",)), tuple(rows)))
    return Document("lstmsym derivations", tuple(blocks))


def collection_latex(docs) -> str:
    """One standalone LaTeX article with several cells' documents (for the PDF)."""
    intro = (_P("Forward and backward equations of every cell lstmsym knows, generated by "
                "lstmsym " + _version() + " with ", Code(REGENERATE), "."),)
    return to_latex_collection("lstmsym derivations", docs, intro)


__all__ = ["cell_document", "collection_latex", "index_document", "jacobian_document", "forward_rows", "to_latex",
           "to_markdown", "PARTS"]
