"""The grammar and reader of hand-written formulas (lstmsym.parsing).

Readings are compared with expressions built by hand from lstmsym.expr nodes, and the LaTeX
printer's own output must read back as the expression it printed.
"""
import pytest

from lstmsym.cells import cell_names, get_cell
from lstmsym.derive import derive
from lstmsym.expr import ActDeriv, BlockSum, Grad, MatVec, OutGrad, Outer, Repeat, had
from lstmsym.ops import sigmoid, tanh
from lstmsym.parsing.interpret import Hole, Reader
from lstmsym.parsing.reader import (FormulaNameError, FormulaShapeError, FormulaSyntaxError,
                                    parse)
from lstmsym.printing.latex import latex
from lstmsym.verification.profiles import DEFAULT, LECTURE
from lstmsym.verification.terms import Normaliser

CELL = get_cell("peephole-lstm")
V = {v.name: v for v in CELL.variables}
P = {p.name: p for p in CELL.params}
C, h, f, i, o = V["C"], V["h"], V["f"], V["i"], V["o"]


def read(text, profile=DEFAULT, convention=None, cell=CELL):
    return Reader(cell, profile, convention).read(parse(text)).expr


@pytest.mark.parametrize("text", [
    r"\nabla_{C_{t+1}}Div \circ f_{t+1}",
    r"\nabla_{C_{t+1}}\mathrm{Div} \odot f_{t+1}",
    r"\nabla_{C_{t+1}} D i v * f_{t+1}",
    r"\delta C_{t+1} \circ f_{t+1}",
    r"\delta_{t+1}^c \circ f_{t+1}",
    r"\frac{\partial L}{\partial C_{t+1}} \circ f_{t+1}",
    r"\left( \nabla_{C_{t+1}}Div \right) \circ \big( f_{t+1} \big)",
    r"f_{t+1} \circ \nabla_{C_{t+1}}\operatorname{Div}",
    "∇_{C_{t+1}}Div ⊙ f_{t+1}",
    "δC_{t+1} ∘ f_{t+1}",
])
def test_spellings_of_one_term(text):
    assert read(text) == had(Grad(C.at(1)), f.at(1)) or read(text) == had(f.at(1), Grad(C.at(1)))


@pytest.mark.parametrize("sup", ["^T", "^\\top", "^{\\mathsf T}", "^{\\mathsf{T}}", "^{T}", "ᵀ", "^⊤"])
def test_transposes(sup):
    e = read(r"W_{hf}%s \delta^f_{t+1}" % sup)
    assert e == MatVec(P["W_hf"], Grad(V["f_bar"].at(1)), transpose=True)


def test_row_convention_reads_the_chain_left_to_right():
    # the lecture: grad o a W  means  W^T (grad o a)
    row = read(r"\nabla_{C_{t+1}}Div \circ C_t \circ \sigma'(\bar f_{t+1}) W_{hf}", LECTURE)
    inner = had(Grad(C.at(1)), C, ActDeriv(sigmoid, V["f_bar"].at(1)))
    assert row == MatVec(P["W_hf"], inner, transpose=True)
    col = read(r"W_{hf}^T(\nabla_{C_{t+1}}Div \circ C_t \circ \sigma'(\bar f_{t+1}))")
    assert col == row


def test_row_convention_distributes_over_a_group_with_matrices():
    e = read(r"\nabla_{C_{t+1}}Div \circ (C_t \circ \sigma'(\bar f_{t+1}) W_{hf} "
             r"+ \tilde{C}_{t+1} \circ \sigma'(\bar i_{t+1}) W_{hi})", LECTURE)
    g = Grad(C.at(1))
    assert e.args[0] == MatVec(P["W_hf"], had(g, C, ActDeriv(sigmoid, V["f_bar"].at(1))), True)
    assert e.args[1] == MatVec(P["W_hi"], had(g, V["C_tilde"].at(1),
                                               ActDeriv(sigmoid, V["i_bar"].at(1))), True)


def test_lecture_output_gradient_and_diagonal_peephole():
    e = read(r"\nabla_{z_t}Div \nabla_{h_t} z_t + \nabla_{h_t}Div \circ \tanh(C_t) W_{Co}",
             LECTURE)
    assert e.args[0] == OutGrad(h)
    assert e.args[1] == had(Grad(h), tanh(C), P["w_Co"])      # W_Co is the diagonal w_Co


def test_placeholders_become_holes():
    e = read(r"\nabla_{h_t}Div \circ \sigma'(.) \circ \tanh(\cdot) \circ \tanh^2()")
    holes = [a for a in e.args if isinstance(a, Hole)]
    assert [(x.fn.name, x.deriv) for x in holes] == [("sigmoid", True), ("tanh", False),
                                                     ("tanh", False), ("tanh", False)]


def test_outer_product_in_both_conventions():
    col = read(r"\delta^f_t h_{t-1}^T")
    row = read(r"h_{t-1}^T \delta^f_t", LECTURE)
    # both are the gradient of W_hf in W_hf h_{t-1}: the layout of W_hf
    assert col == row == Outer(Grad(V["f_bar"]), h.at(-1))


def test_sum_over_t_and_fractions():
    formula = parse(r"\sum_{t=1}^{T} \frac{1}{2} \delta^f_t h_{t-1}^{\top}")
    claim = Reader(CELL, DEFAULT).read(formula)
    assert claim.summed
    assert claim.expr.coeff == 1 / 2


def _has_blocks(cell) -> bool:
    return any(isinstance(n, (Repeat, BlockSum)) for eq in cell.equations for n in eq.expr.walk())


ROUND_TRIP = [(name, s) for name in cell_names()
              for s in get_cell(name).state_names] + [("lstm", "f_bar"), ("gru", "n")]


@pytest.mark.parametrize("cell,var", ROUND_TRIP)
def test_the_printers_latex_reads_back(cell, var):
    # the same sum of products (the printer may move a negative term after a positive one)
    c = get_cell(cell)
    e = derive(c).closed_form(var)
    norm = Normaliser(c)
    assert norm.expand(read(latex(e), cell=c)) == norm.expand(e)


def test_memory_cell_blocks_read_back_as_repeat_and_block_sum():
    # the printer's Kronecker notation: v \otimes 1_k is Repeat, (I \otimes 1_k^T) u BlockSum
    c = next(get_cell(n) for n in cell_names() if _has_blocks(get_cell(n)))
    for var in ("C", "h", "net_in", "y_out"):
        e = derive(c).closed_form(var)
        assert read(latex(e), cell=c) == e
        assert any(isinstance(n, (Repeat, BlockSum)) for n in read(latex(e), cell=c).walk())


def test_syntax_error_has_line_column_and_caret():
    with pytest.raises(FormulaSyntaxError) as exc:
        parse("\\nabla_{C_t}Div \\circ f_t +\n  o_t \\circ ) h_t")
    msg = str(exc.value)
    assert "line 2, column 13" in msg
    lines = msg.splitlines()
    assert lines[1].strip() == "o_t \\circ ) h_t"
    assert lines[2].index("^") == lines[1].index(")")


def test_unknown_symbol_lists_closest_first():
    with pytest.raises(FormulaNameError) as exc:
        read(r"\nabla_{C_{t+1}}Div \circ W_{hff}^T h_t")
    msg = str(exc.value)
    assert "W_{hff}" in msg
    assert msg.split("closest first: ")[1].startswith("W_hf")


def test_shape_error_names_the_term():
    with pytest.raises(FormulaShapeError) as exc:
        read(r"\delta^o_t + W_{xf} \delta^f_t", cell=get_cell("lstm"))
    assert "`W_{xf} \\delta^f_t`" in str(exc.value)
    assert "transpose" in str(exc.value)


def test_division_by_zero_is_a_syntax_error():
    with pytest.raises(FormulaSyntaxError, match=r"divides by zero \(line 1, column 1\)"):
        parse(r"\frac{1}{0} \nabla_{C_{t+1}}Div \circ f_{t+1}")


@pytest.mark.parametrize("text", [r"f_{t+1}^{0}", r"(f_{t+1})^0", r"\tanh^{0}(C_t)"])
def test_power_zero_is_a_syntax_error(text):
    with pytest.raises(FormulaSyntaxError, match=r"the power \^\{0\} is not understood"):
        parse(r"\nabla_{C_{t+1}}Div \circ " + text)


def test_nothing_is_evaluated():
    with pytest.raises(FormulaSyntaxError):
        parse("__import__('os').system('true')")
