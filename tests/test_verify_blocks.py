"""``lstmsym verify`` for memory-cell blocks (lstm1997-blocks: blocks of S = 2 cells share gates).

The Kronecker notation lstmsym prints for the blocks reads back: ``v \\otimes \\mathbf{1}_{k}``
is Repeat(v, k) (each entry repeated k times), ``(I \\otimes \\mathbf{1}_{k}^{\\top}) u`` is
BlockSum(u, k) (each run of k entries summed). Readings are compared with expressions built by
hand from lstmsym.expr nodes; the hand-written gradients below are derived by hand from the
forward equations of REFERENCES.md (Sec. 4: s_c = s_c(t-1) + (y^in ⊗ 1) ∘ g(net_c),
y^c = (y^out ⊗ 1) ∘ h(s_c)); each mistake test makes ONE edit to a correct formula.
"""
import re

import pytest

from lstmsym.cells import get_cell
from lstmsym.cli import main
from lstmsym.errors import LstmsymError
from lstmsym.expr import BlockSum, Grad, Repeat, had
from lstmsym.parsing.interpret import Reader
from lstmsym.parsing.reader import FormulaShapeError, FormulaSyntaxError, parse
from lstmsym.printing.document import cell_document
from lstmsym.printing.layout import to_latex
from lstmsym.verification.judge import verify
from lstmsym.verification.profiles import DEFAULT

CELL = get_cell("lstm1997-blocks")
V = {v.name: v for v in CELL.variables}
y_in, y_out, g_c, C, h = V["y_in"], V["y_out"], V["g_c"], V["C"], V["h"]


def read(text, convention=None, cell=CELL):
    return Reader(cell, DEFAULT, convention).read(parse(text)).expr


def v(text, wrt, **kw):
    return verify(CELL, wrt, text, **kw)


# --- the grammar: spellings of the repetition and the block sum -----------------------------------
REPEAT = had(Repeat(y_in, 2, "H"), g_c)
BLOCKSUM = BlockSum(had(Grad(C), g_c), 2, "G")


@pytest.mark.parametrize("text", [
    r"\left(y^{\mathrm{in}}_{t} \otimes \mathbf{1}_{2}\right) \circ g_c(t)",    # as printed
    r"(y^{in}_t \otimes \mathbf{1}_2) \circ g_c(t)",
    r"y^{in}_t \otimes \mathbf 1_2 \circ g_c(t)",                               # ⊗ binds tightest
    r"(y^{in}_t \otimes \mathbb{1}_{2}) \odot g_c(t)",
    r"\big(y^{in}_{t} \otimes \boldsymbol{1}_2\big) \circ g_c(t)",
    "(y^{in}_t ⊗ \\mathbf{1}_2) ∘ g_c(t)",
    r"\left(\left(I \otimes \mathbf{1}_{2}\right) y^{in}_t\right) \circ g_c(t)",  # (I ⊗ 1) v
    r"g_c(t) \circ (y^{in}_t \otimes \mathbf{1}_{2})",
])
def test_spellings_of_the_repetition(text):
    assert read(text) in (REPEAT, had(g_c, Repeat(y_in, 2, "H")))


@pytest.mark.parametrize("text", [
    r"\left(I \otimes \mathbf{1}_{2}^{\top}\right) \left(\nabla_{s_c(t)}\mathrm{Div} \circ "
    r"g_c(t)\right)",                                                            # as printed
    r"(I \otimes \mathbf{1}_2^T)(\nabla_{C_t}Div \circ g_c(t))",
    r"(I_G \otimes \mathbf{1}^\top_2)(\nabla_{C_t}Div \circ g_c(t))",
    r"(\mathbf{I} \otimes \mathbf{1}_{2}^{\mathsf T}) (g_c(t) \circ \nabla_{C_t}Div)",
    r"I \otimes \mathbf{1}_2^T (\nabla_{C_t}Div \circ g_c(t))",
    "(I ⊗ \\mathbf{1}_2ᵀ)(∇_{C_t}Div ∘ g_c(t))",
])
def test_spellings_of_the_block_sum(text):
    assert read(text) in (BLOCKSUM, BlockSum(had(g_c, Grad(C)), 2, "G"))


def test_row_convention_block_sum_and_repetition():
    # row vectors: u (I ⊗ 1_k) sums each run of k entries; u (I ⊗ 1_kᵀ) repeats
    assert read(r"(\nabla_{C_t}Div \circ g_c(t)) (I \otimes \mathbf{1}_2)", "row") == BLOCKSUM
    assert read(r"y^{in}_t (I \otimes \mathbf{1}_2^T) \circ g_c(t)", "row") == REPEAT


def test_every_printed_block_formula_reads_back_as_printed():
    from lstmsym.derive import derive
    from lstmsym.printing.latex import latex
    for tr in (None, "1997"):
        d = derive(CELL, truncation=tr)
        for var in d.order:
            for e in (d.grad(var), d.closed_form(var.name)):
                assert read(latex(e)) == e, latex(e)


# --- bad uses: a clear error with line, column and a caret, never a traceback ---------------------
GOOD = r"\left(y^{in}_t \otimes \mathbf{1}_{2}\right) \circ g_c(t)"


@pytest.mark.parametrize("text,error,needle,at", [
    (GOOD.replace("{2}", "{k}"), FormulaSyntaxError, "positive integer", r"\mathbf"),
    (GOOD.replace("{2}", "{0}"), FormulaSyntaxError, "positive integer", r"\mathbf"),
    (GOOD.replace("_{2}", ""), FormulaSyntaxError, "has no size", r"\mathbf"),
    (GOOD.replace("{2}", "{3}"), FormulaShapeError, "have 2 cells (G = H/2), not 3", r"\mathbf"),
    (GOOD.replace(r"\mathbf{1}_{2}", r"W_{in,x}"), FormulaSyntaxError,
     "before a vector of ones", "W_"),
    (r"\left(\mathbf{1}_{2} \otimes y^{in}_t\right) \circ g_c(t)", FormulaSyntaxError,
     "before a vector of ones", "y^"),
    (GOOD.replace("{2}", "{2}^T"), FormulaSyntaxError, "is read only as", "y^"),
    (GOOD.replace("y^{in}_t", "s_c(t)"), FormulaShapeError,
     "`s_c(t)` has size H, but", "s_c"),
    (r"(I_H \otimes \mathbf{1}_2^T)(\nabla_{C_t}Div \circ g_c(t))", FormulaShapeError,
     "write I or I_{G}", "I_H"),
    (r"\mathbf{1}_2 \circ g_c(t)", FormulaSyntaxError, "only read after \\otimes", r"\mathbf"),
])
def test_bad_uses_name_the_problem_with_a_caret(text, error, needle, at):
    with pytest.raises(error) as exc:
        read(text)
    msg = str(exc.value)
    assert needle in msg
    col = text.index(at) + 1
    assert msg.startswith(f"line 1, column {col}:"), msg
    lines = msg.splitlines()
    assert lines[1].strip() == text and lines[2].index("^") == lines[1].index(at)


def test_block_sum_the_wrong_way_round_is_a_shape_error_naming_the_term():
    # (I ⊗ 1_2) without the transpose repeats: it cannot take a vector of size H
    with pytest.raises(FormulaShapeError, match=r"shape error in the term .*repeats each entry"
                       r".*I \\otimes \\mathbf\{1\}_\{2\}\^\{\\top\} sums"):
        read(r"(I \otimes \mathbf{1}_2)(\nabla_{C_t}Div \circ g_c(t))")


def test_a_cell_without_blocks_says_so():
    with pytest.raises(FormulaShapeError, match="has no memory-cell blocks"):
        read(r"\nabla_{h_t}Div \circ (o_t \otimes \mathbf{1}_2)", cell=get_cell("lstm"))


def test_a_dropped_repetition_is_a_shape_error_that_shows_the_repetition():
    # a gate has one entry per block (size G); without the repetition the term has no value
    # (size G ∘ size H), so there is no verdict and no counterexample, but the term is named
    text = r"\nabla_{h_t}Div \circ y^{out}_t \circ h'(s_c(t)) + \nabla_{C_{t+1}}Div"
    with pytest.raises(FormulaShapeError) as exc:
        v(text, "C_t")
    msg = str(exc.value)
    assert r"shape error in the term `\nabla_{h_t}Div \circ y^{out}_t \circ h'(s_c(t))`" in msg
    assert r"\left(y^{out}_t \otimes \mathbf{1}_{2}\right)" in msg


def test_cli_bad_input_exits_2_without_traceback(capsys):
    status = main(["verify", "lstm1997-blocks", "--wrt", "g_c", "--formula",
                   GOOD.replace("{2}", "{3}")])
    _, err = capsys.readouterr()
    col = GOOD.index(r"\mathbf") + 1
    assert status == 2 and f"line 1, column {col}:" in err and "Traceback" not in err


# --- round trip: every gradient in lstmsym's own derivation, exact and truncated ------------------
def _rows(truncation):
    """(wrt as written, formula) for every gradient row of the derivation document: the one-step
    section (state, intermediate, delta, parameter and input gradients) and full BPTT (sums)."""
    text = to_latex(cell_document(CELL, truncation=truncation, parts=("step", "bptt")))
    out = []
    for block in re.findall(r"\\begin\{align\*\}(.*?)\\end\{align\*\}", text, re.S):
        for row in re.split(r"\\\\\n(?!&\\quad)", block.strip()):
            lhs, rhs = row.split("&=")
            m = re.fullmatch(r"\s*(?:\\left\[)?\\nabla_\{(.*)\}\\mathrm\{Div\}"
                             r"(\\right\]_\{t\})?\s*", lhs)
            wrt = m.group(1)
            if m.group(2) and "t-1" in wrt:
                continue        # what step t passes back to a previous state: not a gradient
            out.append((wrt, rhs.replace("&\\quad", "")))
    return out


ROWS = [(tr, wrt, rhs) for tr in (None, "1997") for wrt, rhs in _rows(tr)]


def test_the_rows_cover_the_derivation():
    names = {Reader(CELL, DEFAULT).wrt(w).name for tr, w, _ in ROWS}
    assert names == {v.name for v in CELL.variables} | {p.name for p in CELL.params} | {"x"}
    assert sum(r"\otimes" in rhs for _, _, rhs in ROWS) >= 10


@pytest.mark.parametrize("truncation", [None, "1997"])
def test_every_printed_gradient_is_judged_correct_with_a_proof(truncation):
    for tr, wrt, rhs in ROWS:
        if tr != truncation:
            continue
        r = v(rhs, wrt, truncation=truncation)
        assert r.verdict == "correct" and not r.issues, (wrt, rhs, str(r))
        assert "proof:" in str(r) and "G = 2, H = 4" in str(r)
        # the same row as written, left-hand side included (--wrt taken from it)
        r = verify(CELL, None, rf"\nabla_{{{wrt}}}\mathrm{{Div}} = {rhs}", truncation=truncation)
        assert r.ok, (wrt, rhs, str(r))


def test_every_printed_gradient_through_the_cli(capsys):
    for tr, wrt, rhs in ROWS:
        argv = ["verify", "lstm1997-blocks", "--wrt", wrt, "--formula", rhs]
        status = main(argv + (["--truncation", tr] if tr else []))
        out, err = capsys.readouterr()
        assert status == 0 and out.startswith("correct"), (argv, out, err)


def test_the_truncated_formula_is_wrong_for_the_exact_gradient():
    exact = dict((w, r) for tr, w, r in ROWS if tr is None)
    trunc = dict((w, r) for tr, w, r in ROWS if tr == "1997")
    w = "y^{c}_{t}"
    assert exact[w] != trunc[w]
    r = v(trunc[w], w)
    assert not r.ok and len(r.issues) == 3 and "1997 truncated gradient" in r.note


# --- right but written differently: accepted ------------------------------------------------------
GRAD_H = (r"\partial_{h_t}Div "
          r"+ W_{out,h}^T \left(\sigma'(\mathrm{net}_{out}(t+1)) \circ "
          r"(I \otimes \mathbf{1}_2^T)\left(\nabla_{h_{t+1}}Div \circ h(C_{t+1})\right)\right) "
          r"+ W_{c,h}^T \left(\nabla_{C_{t+1}}Div \circ (y^{in}_{t+1} \otimes \mathbf{1}_2) "
          r"\circ g'(\mathrm{net}_{c}(t+1))\right) "
          r"+ W_{in,h}^T \left(\sigma'(\mathrm{net}_{in}(t+1)) \circ "
          r"(I \otimes \mathbf{1}_2^T)\left(\nabla_{C_{t+1}}Div \circ g_c(t+1)\right)\right)")
GRAD_C = (r"\nabla_{h_t}Div \circ (y^{out}_t \otimes \mathbf{1}_2) \circ h'(C_t) "
          r"+ \nabla_{C_{t+1}}Div")
DELTA_IN = (r"\sigma'(\mathrm{net}_{in}(t)) \circ "
            r"(I \otimes \mathbf{1}_2^T)(\nabla_{C_t}Div \circ g_c(t))")


@pytest.mark.parametrize("wrt,text", [
    ("h_t", GRAD_H),
    ("C_t", GRAD_C),
    ("net_in", DELTA_IN),
    # σ' moved inside the block sum, repeated: (I⊗1ᵀ)(u ∘ (a ⊗ 1)) = a ∘ (I⊗1ᵀ)u
    ("net_in", r"(I \otimes \mathbf{1}_2^T)\left(\nabla_{C_t}Div \circ g_c(t) \circ "
               r"(\sigma'(\mathrm{net}_{in}(t)) \otimes \mathbf{1}_2)\right)"),
    # σ(1 − σ) at a gate of the blocks (size G), expanded over the block sum's argument
    ("net_in", r"\sigma(\mathrm{net}_{in}(t)) \circ (1 - \sigma(\mathrm{net}_{in}(t))) \circ "
               r"\left((I \otimes \mathbf{1}_2^T)(\nabla_{C_t}Div \circ g_c(t))\right)"),
    # column vectors: a matrix acts on all that follows it, hence the parentheses
    ("net_in", r"\left((I \otimes \mathbf{1}_2^T)(\nabla_{C_t}Div \circ g_c(t))\right) \circ "
               r"y^{in}_t - \left((I \otimes \mathbf{1}_2^T)(\nabla_{C_t}Div \circ g_c(t))\right) "
               r"\circ y^{in}_t \circ y^{in}_t"),
    # the repetition as a matrix product (I ⊗ 1_2) y
    ("C_t", GRAD_C.replace(r"(y^{out}_t \otimes \mathbf{1}_2)",
                           r"\left((I \otimes \mathbf{1}_2) y^{out}_t\right)")),
    # a placeholder next to the output gate's weight: σ' at its pre-activation (size G)
    ("h_t", GRAD_H.replace(r"\sigma'(\mathrm{net}_{out}(t+1))", r"\sigma'(.)")),
    ("net_in", r"(I \otimes \mathbf{1}_2^T)\left(\nabla_{C_t}Div \circ g_c(t) \circ "
               r"(\sigma'(.) \otimes \mathbf{1}_2)\right)"),
])
def test_right_but_different_is_accepted(wrt, text):
    r = v(text, wrt)
    assert r.verdict == "correct", str(r)


def test_row_convention_hand_written():
    # row vectors: (∇ ∘ g_c) (I ⊗ 1_2) ∘ σ'(net_in) W_in,h is W_in,hᵀ(σ' ∘ blocksum(∇∘g_c))
    text = (r"\partial_{h_t}Div "
            r"+ \nabla_{h_{t+1}}Div \circ h(C_{t+1}) (I \otimes \mathbf{1}_2) "
            r"\circ \sigma'(\mathrm{net}_{out}(t+1)) W_{out,h} "
            r"+ \nabla_{C_{t+1}}Div \circ (y^{in}_{t+1} \otimes \mathbf{1}_2) "
            r"\circ g'(\mathrm{net}_{c}(t+1)) W_{c,h} "
            r"+ \nabla_{C_{t+1}}Div \circ g_c(t+1) (I \otimes \mathbf{1}_2) "
            r"\circ \sigma'(\mathrm{net}_{in}(t+1)) W_{in,h}")
    assert v(text, "h_t", convention="row").ok
    bad = text.replace(r"h(C_{t+1}) (I \otimes \mathbf{1}_2)", r"h(C_{t+1}) (I \otimes "
                       r"\mathbf{1}_2^T)")
    with pytest.raises(FormulaShapeError, match="sums each run"):
        v(bad, "h_t", convention="row")


# --- one edit, one named mistake, with a counterexample -------------------------------------------
BLOCK_H = r"(I \otimes \mathbf{1}_2^T)\left(\nabla_{h_{t+1}}Div \circ h(C_{t+1})\right)"
MISTAKES = [
    ("wrong gate in the repetition", "C_t", GRAD_C.replace("y^{out}_t", "y^{in}_t"),
     "wrong gate", r"y^{\mathrm{in}}_{t}", r"y^{\mathrm{out}}_{t}"),
    ("time-index slip in the repetition", "h_t", GRAD_H.replace("y^{in}_{t+1}", "y^{in}_{t}"),
     "time-index slip", r"y^{\mathrm{in}}_{t}", r"y^{\mathrm{in}}_{t+1}"),
    ("derivative inside the block sum", "h_t", GRAD_H.replace("h(C_{t+1})", "h'(C_{t+1})"),
     "wrong factor", r"h'(s_c(t+1))", r"h(s_c(t+1))"),
    ("block sum of each factor, not of their product", "h_t",
     GRAD_H.replace(BLOCK_H, r"\left((I \otimes \mathbf{1}_2^T)\nabla_{h_{t+1}}Div\right) \circ "
                             r"\left((I \otimes \mathbf{1}_2^T) h(C_{t+1})\right)"),
     "block sum over the wrong factors", r"\left(I \otimes \mathbf{1}_{2}^{\top}\right)",
     None),
    ("block sum of the wrong gradient", "net_in",
     DELTA_IN.replace(r"\nabla_{C_t}", r"\nabla_{h_t}"),
     "wrong gradient", r"\nabla_{y^{c}_{t}}\mathrm{Div}", r"\nabla_{s_c(t)}\mathrm{Div}"),
    ("wrong gate's derivative outside the block sum", "net_in",
     DELTA_IN.replace(r"\mathrm{net}_{in}(t)", r"\mathrm{net}_{out}(t)"),
     "derivative at the wrong point", r"\sigma'(\mathrm{net}_{\mathrm{out}}(t))",
     r"\sigma'(\mathrm{net}_{\mathrm{in}}(t))"),
]


@pytest.mark.parametrize("label,wrt,text,kind,got,want", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_one_edit_is_named_with_a_counterexample(label, wrt, text, kind, got, want):
    r = v(text, wrt)
    assert r.verdict == "wrong" and r.exit_code == 1, str(r)
    assert len(r.issues) == 1, str(r)
    issue = r.issues[0]
    assert issue.claimed is not None and issue.derived is not None, str(r)
    assert [d[0] for d in issue.details] == [kind], str(r)
    text_ = issue.details[0][1]
    assert got in text_ and (want is None or want in text_), text_
    ce = r.counterexample
    assert ce["network"] and ce["sizes"]["G"] == 2
    assert max(abs(a - b) for a, b in zip(ce["claimed"], ce["derived"])) > 1e-6


def test_one_edit_through_the_cli(capsys):
    status = main(["verify", "lstm1997-blocks", "--wrt", "C_t", "--formula",
                   GRAD_C.replace("y^{out}_t", "y^{in}_t")])
    out, _ = capsys.readouterr()
    assert status == 1
    assert r"wrong gate: y^{\mathrm{in}}_{t} where y^{\mathrm{out}}_{t} belongs" in out
    assert "corrected:" in out and "counterexample" in out and "G = 2, H = 4" in out


def test_each_term_dropped_or_negated_is_named():
    from lstmsym.derive import derive
    from lstmsym.expr import add, scale, terms
    from lstmsym.printing.latex import latex
    from lstmsym.verification.terms import Normaliser
    norm = Normaliser(CELL)
    for tr in (None, "1997"):
        for var in ("h", "C", "net_in", "net_out", "y_in"):
            ts = terms(derive(CELL, truncation=tr).closed_form(var))
            for k in range(len(ts)):
                rest = ts[:k] + ts[k + 1:]
                negated = add(*(ts[:k] + [scale(-1, ts[k])] + ts[k + 1:]))
                for edited, kind in ([(add(*rest), "missing")] if rest else []) + \
                        [(negated, "sign error")]:
                    r = v(latex(edited), var, truncation=tr)
                    assert not r.ok and len(r.issues) == 1, str(r)
                    assert r.issues[0].kind.startswith(kind), str(r)
                    if kind == "missing":
                        assert norm.expand(r.issues[0].derived) == norm.expand(ts[k])


def test_python_api_with_an_expression():
    from lstmsym.derive import derive
    e = derive(CELL).closed_form("C")
    assert verify(CELL, "C_t", e).ok
    assert not verify("lstm1997-blocks", "C_t", e.args[0]).ok


def test_wrt_with_times_in_parentheses():
    reader = Reader(CELL, DEFAULT)
    assert reader.wrt("s_c(t-1)") == C.at(-1)
    assert reader.wrt(r"\mathrm{net}_{\mathrm{in}}(t)").name == "net_in"
    with pytest.raises(LstmsymError, match="name one quantity"):
        reader.wrt(r"s_c(t) \circ g_c(t)")


@pytest.mark.parametrize("wrt", ["h", "C", "x"])
def test_row_convention_printout_of_the_blocks_reads_back_correct(wrt):
    """The row-convention printer writes a block sum as u (I ⊗ 1_2), which the reader takes
    back (it used to print the column form (I ⊗ 1_2ᵀ) u, a shape error in row convention)."""
    from lstmsym.verification.judge import Judge
    from lstmsym.verification.result import row_latex
    cell = get_cell("lstm1997-blocks")
    text = row_latex(Judge(cell, wrt).derived())
    assert r"\left(I \otimes \mathbf{1}_{2}\right)" in text or wrt == "C"
    r = verify(cell, wrt, text, convention="row")
    assert r.ok, str(r)


def test_a_numpy_callable_is_checked_at_two_blocks():
    """A callable for the blocks cell is evaluated with G = H / 2 (it used to fail with 'no
    size given for dimension G'); the right one is correct, one with h' halved is wrong."""
    import numpy as np

    def grad(factor):
        def grad_C(dh, y_out, C, dC_next):
            s = 1 / (1 + np.exp(-C))      # h(s) = 2 sigma(s) - 1, so h' = 2 sigma (1 - sigma)
            return dh * np.repeat(y_out, 2, axis=0) * factor * s * (1 - s) + dC_next
        return grad_C

    r = verify("lstm1997-blocks", "C", grad(2.0))
    assert r.ok and "G = 2" in r.method, str(r)
    r = verify("lstm1997-blocks", "C", grad(1.0))
    assert not r.ok and r.counterexample["sizes"]["G"] == 2
