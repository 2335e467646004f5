"""The judge of hand-derived gradients (lstmsym.verification.judge.verify).

The correct formulas below are written by hand from the peephole LSTM's forward equations
(REFERENCES.md Sec. 3 and 6), not taken from lstmsym's derivation; each mistake test makes ONE
edit to a correct formula and checks that the judge names that edit.
"""
import time
from pathlib import Path

import numpy as np
import pytest
import sympy

from lstmsym.cells import cell_names, get_cell
from lstmsym.derive import derive
from lstmsym.printing.latex import latex
from lstmsym.expr import ActDeriv, Grad, Had, Sym, had
from lstmsym.ops import sigmoid
from lstmsym.parsing.reader import FormulaShapeError
from lstmsym.verification.judge import verify
from lstmsym.verification.terms import Normaliser

DATA = Path(__file__).parent / "data"

# nabla_{C_t} Div of the peephole LSTM, column vectors, the cell's own names
GRAD_C = (r"\nabla_{h_t}Div \circ o_t \circ \tanh'(C_t) "
          r"+ \nabla_{h_t}Div \circ \tanh(C_t) \circ \sigma'(\bar{o}_t) \circ w_{Co} "
          r"+ \nabla_{C_{t+1}}Div \circ f_{t+1} "
          r"+ \nabla_{C_{t+1}}Div \circ \tilde{C}_{t+1} \circ \sigma'(\bar{i}_{t+1}) \circ w_{Ci} "
          r"+ \nabla_{C_{t+1}}Div \circ C_t \circ \sigma'(\bar{f}_{t+1}) \circ w_{Cf}")
GRAD_H = (r"\partial_{h_t}Div "
          r"+ W_{ho}^T(\nabla_{h_{t+1}}Div \circ \tanh(C_{t+1}) \circ \sigma'(\bar o_{t+1})) "
          r"+ W_{hC}^T(\nabla_{C_{t+1}}Div \circ i_{t+1} \circ \tanh'(\bar{\tilde C}_{t+1})) "
          r"+ W_{hi}^T(\nabla_{C_{t+1}}Div \circ \tilde C_{t+1} \circ \sigma'(\bar i_{t+1})) "
          r"+ W_{hf}^T(\nabla_{C_{t+1}}Div \circ C_t \circ \sigma'(\bar f_{t+1}))")
GRAD_X = r"W_{xf}^T\delta^f_t + W_{xi}^T\delta^i_t + W_{xC}^T \delta^g_t + W_{xo}^T\delta^o_t"

CARRY = r" + \nabla_{C_{t+1}}Div \circ f_{t+1}"
PEEP_O = r" + \nabla_{h_t}Div \circ \tanh(C_t) \circ \sigma'(\bar{o}_t) \circ w_{Co}"


def v(text, wrt="C_t", **kw):
    return verify("peephole-lstm", wrt, text, **kw)


@pytest.mark.parametrize("wrt,text", [("C_t", GRAD_C), ("h_t", GRAD_H), ("x_t", GRAD_X)])
def test_hand_written_formulas_are_correct(wrt, text):
    r = v(text, wrt)
    assert r.verdict == "correct", str(r)
    assert r.exit_code == 0 and not r.issues


@pytest.mark.parametrize("text", [
    # factorised
    r"\nabla_{h_t}Div \circ (o_t \circ \tanh'(C_t) + \tanh(C_t) \circ \sigma'(\bar o_t) \circ "
    r"w_{Co}) + \nabla_{C_{t+1}}Div \circ (f_{t+1} + \tilde C_{t+1} \circ \sigma'(\bar i_{t+1}) "
    r"\circ w_{Ci} + C_t \circ \sigma'(\bar f_{t+1}) \circ w_{Cf})",
    # sigma(1 - sigma), o(1 - o), 1 - tanh^2, terms and factors reordered
    r"\nabla_{C_{t+1}}Div \circ C_t \circ \sigma(\bar f_{t+1}) \circ (1 - \sigma(\bar f_{t+1}))"
    r" \circ w_{Cf} + f_{t+1} \circ \nabla_{C_{t+1}}Div + \nabla_{h_t}Div \circ o_t \circ "
    r"(1 - \tanh^2(C_t)) + w_{Co} \circ \nabla_{h_t}Div \circ \tanh(C_t) \circ o_t \circ "
    r"(1 - o_t) + \nabla_{C_{t+1}}Div \circ \tilde C_{t+1} \circ i_{t+1}(1-i_{t+1}) \circ w_{Ci}",
    # the gradient at t written through t+1 (nabla_{h_t} expanded)
    GRAD_C.replace(r"\nabla_{h_t}Div \circ o_t", "(" + GRAD_H + r") \circ o_t")
    .replace(r" + \nabla_{h_t}Div \circ \tanh(C_t)",
             " + (" + GRAD_H + r") \circ \tanh(C_t)"),
], ids=["factorised", "sigma(1-sigma), reordered", "written through t+1"])
def test_right_but_different_is_accepted(text):
    assert v(text).ok


def test_missing_transpose_in_the_row_convention():
    # row vectors: (grad o a) W_hf is right; (grad o a) W_hf^T is the mistake
    right = r"\partial_{h_t}Div + \nabla_{C_{t+1}}Div \circ C_t \circ \sigma'(\bar f_{t+1}) W_{hf}"
    r = verify("lstm", "h_t", right.replace("W_{hf}", "W_{hf}^T")
               + r" + \nabla_{h_{t+1}}Div \circ \tanh(C_{t+1}) \circ \sigma'(\bar o_{t+1}) W_{ho}"
               + r" + \nabla_{C_{t+1}}Div \circ (i_{t+1} \circ \tanh'(\bar{\tilde C}_{t+1}) W_{hC}"
               + r" + \tilde C_{t+1} \circ \sigma'(\bar i_{t+1}) W_{hi})", convention="row")
    assert [i.kind for i in r.issues] == ["transpose where none belongs"]
    assert r.issues[0].details[0][1] == r"$W_{hf}^{\top}$ where $W_{hf}$ belongs"


def test_row_and_column_conventions_agree():
    row = (r"\partial_{h_t}Div + \nabla_{h_{t+1}}Div \circ \tanh(C_{t+1}) \circ "
           r"\sigma'(\bar o_{t+1}) W_{ho} + \nabla_{C_{t+1}}Div \circ (i_{t+1} \circ "
           r"\tanh'(\bar{\tilde C}_{t+1}) W_{hC} + \tilde C_{t+1} \circ \sigma'(\bar i_{t+1}) "
           r"W_{hi} + C_t \circ \sigma'(\bar f_{t+1}) W_{hf})")
    assert v(row, "h_t", convention="row").ok
    with pytest.raises(FormulaShapeError):
        v(row, "h_t", convention="column")  # a weight at the end: a row-convention formula
    with pytest.raises(FormulaShapeError):
        v(GRAD_X, "x_t", convention="row")   # W^T first: a column-convention formula


# --- one edit, one named mistake ------------------------------------------------------------
MISTAKES = [
    ("missing carry term", "C_t", GRAD_C.replace(CARRY, ""), None),
    ("extra term", "C_t", GRAD_C + r" + \nabla_{h_t}Div \circ o_t", None),
    ("sign error", "C_t", GRAD_C.replace(CARRY, CARRY.replace(" + ", " - ")), None),
    ("missing transpose", "h_t", GRAD_H.replace("W_{hf}^T", "W_{hf}"),
     (r"W_{hf}", r"W_{hf}^{\top}")),
    ("wrong gate", "h_t", GRAD_H.replace(r"\circ i_{t+1}", r"\circ o_{t+1}"),
     ("o_{t+1}", "i_{t+1}")),
    ("wrong weight matrix", "h_t", GRAD_H.replace("W_{hC}^T", "W_{hi}^T"),
     (r"W_{hi}^{\top}", r"W_{hC}^{\top}")),
    ("σ' where tanh' belongs", "C_t", GRAD_C.replace(r"o_t \circ \tanh'(C_t)",
                                                    r"o_t \circ \sigma'(C_t)"),
     (r"\sigma'(C_{t})", r"\tanh'(C_{t})")),
    ("time-index slip", "C_t", GRAD_C.replace(r"\circ f_{t+1}", r"\circ f_{t}"),
     ("f_{t}", "f_{t+1}")),
    ("derivative at the wrong point", "C_t",
     GRAD_C.replace(r"\sigma'(\bar{f}_{t+1})", r"\sigma'(\bar{i}_{t+1})"),
     (r"\sigma'(\bar{i}_{t+1})", r"\sigma'(\bar{f}_{t+1})")),
    ("missing peephole term", "C_t", GRAD_C.replace(PEEP_O, ""), None),
]


@pytest.mark.parametrize("label,wrt,text,swap", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_one_edit_is_named(label, wrt, text, swap):
    r = v(text, wrt)
    assert r.verdict == "wrong" and r.exit_code == 1
    assert len(r.issues) == 1, str(r)
    issue = r.issues[0]
    assert issue.kind == label, str(r)
    if swap is not None:
        assert issue.details[0][1] == f"${swap[0]}$ where ${swap[1]}$ belongs"
    ce = r.counterexample
    assert np.max(np.abs(np.subtract(ce["claimed"], ce["derived"]))) > 1e-6


def test_missing_carry_term_is_the_carry():
    r = v(GRAD_C.replace(CARRY, ""))
    assert r.issues[0].derived == had(Grad(Sym("C", "state", ("H",), 1)),
                                      Sym("f", "var", ("H",), 1))


def test_missing_transpose_with_h_not_i_is_a_shape_error_naming_the_term():
    with pytest.raises(FormulaShapeError) as exc:
        v(GRAD_X.replace(r"W_{xC}^T", r"W_{xC}"), "x_t")
    assert r"`W_{xC} \delta^g_t`" in str(exc.value)


# --- the lecture's own formulas (seed 001) ------------------------------------------------------
def lecture(name, wrt):
    return verify("peephole-lstm", wrt, (DATA / name).read_text(), profile="lecture")


def test_lecture_grad_C_has_one_extra_factor():
    r = lecture("lecture_grad_C.tex", "C_t")
    assert r.verdict == "wrong"
    assert [i.kind for i in r.issues] == ["extra factor"]
    assert r.issues[0].details[0][1] == r"$\tanh(C_{t+1})$"
    # independent check of the counterexample: both sides recomputed from the printed values
    ce = r.counterexample["values"]
    g = {k: np.array(x) for k, x in ce.items()}

    def sig_d(z):
        s = 1 / (1 + np.exp(-z))
        return s * (1 - s)
    dh, dC1 = g[r"\nabla_{h_{t}}\mathrm{Div}"], g[r"\nabla_{C_{t+1}}\mathrm{Div}"]
    right = (dh * g["o_{t}"] * (1 - np.tanh(g["C_{t}"]) ** 2)
             + dh * np.tanh(g["C_{t}"]) * sig_d(g[r"\bar{o}_{t}"]) * g["w_{Co}"]
             + dC1 * g["f_{t+1}"]
             + dC1 * g[r"\tilde{C}_{t+1}"] * sig_d(g[r"\bar{i}_{t+1}"]) * g["w_{Ci}"]
             + dC1 * g["C_{t}"] * sig_d(g[r"\bar{f}_{t+1}"]) * g["w_{Cf}"])
    theirs = right + dC1 * g[r"\tilde{C}_{t+1}"] * sig_d(g[r"\bar{i}_{t+1}"]) * g["w_{Ci}"] * \
        (np.tanh(g["C_{t+1}"]) - 1)
    assert np.allclose(right, r.counterexample["derived"], rtol=1e-4)
    assert np.allclose(theirs, r.counterexample["claimed"], rtol=1e-4)


def test_lecture_grad_h_has_the_wrong_gate_and_weight_in_one_term():
    r = lecture("lecture_grad_h.tex", "h_t")
    assert r.verdict == "wrong"
    assert len(r.issues) == 1
    details = dict(r.issues[0].details)
    assert details["wrong weight matrix"] == r"$W_{hi}$ where $W_{hC}$ belongs"   # row vectors
    assert details["wrong gate"] == r"$o_{t+1}$ where $i_{t+1}$ belongs"


def test_lecture_formulas_corrected_are_correct():
    c = (DATA / "lecture_grad_C.tex").read_text().replace(r"\circ \tanh (.) \right)", r"\right)")
    h = (DATA / "lecture_grad_h.tex").read_text().replace(
        r"o_{t+1} \circ \tanh ^{\prime}(.) W_{h i}", r"i_{t+1} \circ \tanh ^{\prime}(.) W_{h C}")
    assert verify("peephole-lstm", "C_t", c, profile="lecture").ok
    assert verify("peephole-lstm", "h_t", h, profile="lecture").ok


def test_lecture_placeholder_sigma_one_minus_sigma_next_to_the_weight():
    text = (r"\nabla_{C_{t+1}} Div \circ (f_{t+1} + C_t \circ \sigma(.)(1-\sigma(.)) W_{Cf} + "
            r"\tilde{C}_{t+1} \circ \sigma'(.) W_{Ci}) + \nabla_{h_t}Div \circ (o_t \circ "
            r"(1-\tanh^2(.)) + \tanh(.) \circ \sigma'(.) W_{Co})")
    r = verify("peephole-lstm", "C_t", text, profile="lecture")
    assert r.ok, str(r)


def test_speed_of_an_lstm_sized_formula():
    start = time.perf_counter()
    lecture("lecture_grad_C.tex", "C_t")
    assert time.perf_counter() - start < 15   # about 1 s on the dev machine; see the report


# --- other kinds of claim -------------------------------------------------------------------------
def test_expression_claim():
    cell = get_cell("lstm")
    C = next(s for s in cell.states if s.name == "C")
    f_bar = next(e.target for e in cell.equations if e.target.name == "f_bar")
    claim = Had((Grad(C), C.at(-1), ActDeriv(sigmoid, f_bar)))
    assert verify(cell, "f_bar", claim).ok
    assert not verify(cell, "f_bar", Had((Grad(C), C.at(-1)))).ok


def test_numpy_callable_claim():
    def right(dh, o, C, dC_next, f_next):
        return dh * o * (1 - np.tanh(C) ** 2) + dC_next * f_next

    def wrong(dh, o, C, dC_next, f_next):
        return dh * o * (1 - np.tanh(C) ** 2) + dC_next * f_next * 0.5

    assert verify("lstm", "C_t", right).ok
    r = verify("lstm", "C_t", wrong)
    assert not r.ok and r.exit_code == 1
    assert not np.allclose(r.counterexample["claimed"], r.counterexample["derived"])


def test_sympy_matrix_claim():
    H = 2
    s = sympy.Symbol
    right = sympy.Matrix([s(f"dh_t_{k}") * s(f"o_t_{k}") * (1 - sympy.tanh(s(f"C_t_{k}")) ** 2)
                          + s(f"dC_tp1_{k}") * s(f"f_tp1_{k}") for k in range(H)])
    assert verify("lstm", "C_t", right).ok
    assert not verify("lstm", "C_t", right * 2).ok


def test_truncation_1997():
    assert verify("lstm", "h_t", r"\partial_{h_t}Div", truncation="1997").ok
    r = verify("lstm", "h_t", r"\partial_{h_t}Div")
    assert not r.ok and "1997" in r.note


def test_result_renders_in_jupyter():
    r = v(GRAD_C.replace(CARRY, ""))
    md = r._repr_markdown_()
    assert md.startswith("wrong") and r"$\nabla_{C_{t+1}}\mathrm{Div} \circ f_{t+1}$" in md
    assert "counterexample" in r._repr_html_()


def _own_gradient(cell, wrt):
    from lstmsym.verification.judge import Judge
    return latex(Judge(cell, wrt).derived())


@pytest.mark.parametrize("name", cell_names())
def test_every_cell_judges_its_own_printed_gradient_correct(name):
    cell = get_cell(name)
    for wrt in list(cell.state_names) + [x.name for x in cell.inputs]:
        r = verify(cell, wrt, _own_gradient(cell, wrt))
        assert r.ok, str(r)


@pytest.mark.slow
@pytest.mark.parametrize("name", cell_names())
def test_every_cell_judges_its_own_parameter_gradients_correct(name):
    cell = get_cell(name)
    for p in cell.params:
        r = verify(cell, p.name, _own_gradient(cell, p.name))
        assert r.ok, str(r)
        doubled = verify(cell, p.name, "2" + _own_gradient(cell, p.name).join("()"))
        assert not doubled.ok and doubled.issues
        assert {i.kind for i in doubled.issues} == {"wrong coefficient"}


PARAMS = [
    ("W_hf", r"\sum_t \delta^f_t h_{t-1}^T", {}, None),
    ("W_xf", r"\nabla_{C_t}Div \circ C_{t-1} \circ \sigma'(\bar f_t)\, x_t^{\top}", {}, None),
    ("W_xf", r"x_{t}^T (\nabla_{C_t}Div \circ C_{t-1} \circ \sigma'(.))", {"profile": "lecture"},
     None),
    ("b_f", r"\sum_{t=1}^{T} \delta^f_t", {}, None),
    ("w_Cf", r"\sum_t \delta^f_t \circ C_{t-1}", {}, None),
    ("W_hf", r"\sum_t \delta^f_t h_{t}^T", {}, "time-index slip"),
    ("W_hf", r"\sum_t \delta^i_t h_{t-1}^T", {}, "wrong gradient"),
    ("x_t", GRAD_X.replace(r"W_{xi}^T\delta^i_t", r"W_{xi}^T\delta^f_t"), {}, "wrong gradient"),
]


@pytest.mark.parametrize("wrt,text,kw,mistake", PARAMS)
def test_parameter_gradients(wrt, text, kw, mistake):
    r = v(text, wrt, **kw)
    if mistake is None:
        assert r.ok, str(r)
    else:
        assert [i.kind for i in r.issues] == [mistake], str(r)


def test_total_gradient_of_the_previous_cell_state():
    text = (r"\nabla_{C_t}Div \circ f_t + w_{Cf} \circ \delta^f_t + w_{Ci} \circ \delta^i_t "
            r"+ \nabla_{h_{t-1}}Div \circ o_{t-1} \circ \tanh'(C_{t-1}) "
            r"+ \nabla_{h_{t-1}}Div \circ \tanh(C_{t-1}) \circ \sigma'(\bar o_{t-1}) \circ w_{Co}")
    assert v(text, "C_{t-1}").ok
    assert not v(text.replace(r"\circ f_t", r"\circ f_{t-1}"), "C_{t-1}").ok


# --- every term of every cell: drop it, or flip its sign, and the judge names that term ----------
def _edits(name):
    from lstmsym.expr import add, scale, terms
    cell = get_cell(name)
    for state in cell.state_names:
        full = derive(cell).closed_form(state)
        ts = terms(full)
        for k in range(len(ts)):
            rest = ts[:k] + ts[k + 1:]
            if rest:
                yield cell, state, ts[k], add(*rest), "missing"
            yield cell, state, ts[k], add(*(ts[:k] + [scale(-1, ts[k])] + ts[k + 1:])), "sign"


def _check_edits(name):
    for cell, state, term, edited, what in _edits(name):
        r = verify(cell, state, latex(edited))
        assert not r.ok, (name, state, latex(edited))
        assert len(r.issues) == 1, str(r)
        issue = r.issues[0]
        if what == "missing":
            assert issue.kind.startswith("missing") and issue.claimed is None, str(r)
            assert Normaliser(cell).expand(issue.derived) == Normaliser(cell).expand(term)
        else:
            assert issue.kind == "sign error", str(r)


@pytest.mark.parametrize("name", ["peephole-lstm", "gru"])
def test_each_term_dropped_or_negated_is_named(name):
    _check_edits(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", cell_names())
def test_each_term_dropped_or_negated_is_named_every_cell(name):
    _check_edits(name)
