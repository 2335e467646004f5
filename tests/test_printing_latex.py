"""The LaTeX printer: exact strings for small nodes, precedence, every registered cell prints."""
from fractions import Fraction

import pytest

from lstmsym.cells import cell_names, get_cell
from lstmsym.derive import derive
from lstmsym.expr import (Act, ActDeriv, BlockSum, Grad, Had, MatVec, Ones, OutGrad, Outer,
                          Repeat, Scale, Sym, Zero, add, scale)
from lstmsym.ops import g1997, relu, scalar_activation, sigmoid, tanh
from lstmsym.printing.latex import latex

H = ("H",)
C = Sym("C", "state", H)
h = Sym("h", "state", H)
f = Sym("f", "var", H)
o = Sym("o", "var", H)
f_bar = Sym("f_bar", "var", H)
x = Sym("x", "input", ("I",))
W_hf = Sym("W_hf", "param", ("H", "H"))
W_xf = Sym("W_xf", "param", ("H", "I"))
b_f = Sym("b_f", "param", H)
w_Cf = Sym("w_Cf", "param", H)


@pytest.mark.parametrize("node, expected", [
    (C, "C_{t}"),
    (C.prev, "C_{t-1}"),
    (C.at(1), "C_{t+1}"),
    (Sym("C_tilde", "var", H), r"\tilde{C}_{t}"),
    (f_bar, r"\bar{f}_{t}"),
    (W_hf, "W_{hf}"),
    (Grad(C), r"\nabla_{C_{t}}\mathrm{Div}"),
    (Grad(C.at(1)), r"\nabla_{C_{t+1}}\mathrm{Div}"),
    (OutGrad(h), r"\partial_{h_{t}}\mathrm{Div}"),
    (Ones(H), r"\mathbf{1}"),
    (Zero(H), r"\mathbf{0}"),
    (Act(sigmoid, f_bar), r"\sigma(\bar{f}_{t})"),
    (Act(tanh, C), r"\tanh(C_{t})"),
    (ActDeriv(sigmoid, f_bar), r"\sigma'(\bar{f}_{t})"),
    (ActDeriv(tanh, C), r"\tanh'(C_{t})"),
    (ActDeriv(relu, f_bar), r"\mathrm{ReLU}'(\bar{f}_{t})"),
    (ActDeriv(g1997, f_bar), r"g'(\bar{f}_{t})"),
    (Had((Grad(h), o, ActDeriv(tanh, C))),
     r"\nabla_{h_{t}}\mathrm{Div} \circ o_{t} \circ \tanh'(C_{t})"),
    (MatVec(W_hf, h.prev), "W_{hf} h_{t-1}"),
    (MatVec(W_hf, Grad(f_bar.at(1)), transpose=True),
     r"W_{hf}^{\top} \nabla_{\bar{f}_{t+1}}\mathrm{Div}"),
    (Outer(Grad(f_bar), h.prev), r"\nabla_{\bar{f}_{t}}\mathrm{Div}\, h_{t-1}^{\top}"),
    (W_hf.T, r"W_{hf}^{\top}"),
    (Repeat(Sym("y_in", "var", ("G",)), 2, "H"), r"y_{in}(t) \otimes \mathbf{1}_{2}"),
    (BlockSum(Grad(C), 2, "G"), r"\left(I \otimes \mathbf{1}_{2}^{\top}\right) "
                                r"\nabla_{C_{t}}\mathrm{Div}"),
])
def test_small_nodes(node, expected):
    assert latex(node) == expected


def test_affine_pre_activation_reads_like_the_lecture():
    pre = w_Cf * C.prev + W_hf @ h.prev + W_xf @ x + b_f
    assert latex(pre) == r"w_{Cf} \circ C_{t-1} + W_{hf} h_{t-1} + W_{xf} x_{t} + b_{f}"
    assert latex(Act(sigmoid, pre)) == (
        r"\sigma\left(w_{Cf} \circ C_{t-1} + W_{hf} h_{t-1} + W_{xf} x_{t} + b_{f}\right)")


def test_minus_signs_are_subtraction():
    assert latex(1 - f) == r"\mathbf{1} - f_{t}"
    assert latex(f - o) == "f_{t} - o_{t}"
    assert latex(-f) == "-f_{t}"
    assert latex(-f + o) == "o_{t} - f_{t}"          # a sum opens with a positive term
    assert latex(-f - o) == "-f_{t} - o_{t}"
    assert latex(add(-f, -o, C, h)) == "C_{t} - f_{t} - o_{t} + h_{t}"
    assert latex(f - 2 * o) == r"f_{t} - 2\, o_{t}"
    assert latex(-(f + o)) == r"-\left(f_{t} + o_{t}\right)"


def test_fractions():
    assert latex(Scale(Fraction(1, 2), f)) == r"\frac{1}{2}\, f_{t}"
    assert latex(add(f, Scale(Fraction(-3, 4), o))) == r"f_{t} - \frac{3}{4}\, o_{t}"
    assert latex(Scale(Fraction(1, 2), f + o)) == r"\frac{1}{2}\, \left(f_{t} + o_{t}\right)"


def test_parentheses_by_precedence():
    # a sum inside a Hadamard product, a Hadamard product under a matrix: parenthesised
    assert latex(Had(((1 - f), o))) == r"\left(\mathbf{1} - f_{t}\right) \circ o_{t}"
    assert latex(MatVec(W_hf, f * o)) == r"W_{hf} \left(f_{t} \circ o_{t}\right)"
    assert latex(MatVec(W_hf, f + o)) == r"W_{hf} \left(f_{t} + o_{t}\right)"
    # a matrix product inside a Hadamard product is bracketed so it cannot be misread
    assert latex(Had((W_hf @ h.prev, o))) == r"\left(W_{hf} h_{t-1}\right) \circ o_{t}"
    # a Hadamard product inside a sum needs none; nested matrix products read left to right
    assert latex(f * o + C) == r"f_{t} \circ o_{t} + C_{t}"
    assert latex(W_hf @ (W_hf @ h.prev)) == "W_{hf} W_{hf} h_{t-1}"
    # scaling a Hadamard product keeps the coefficient in front
    assert latex(scale(2, f * o)) == r"2\, f_{t} \circ o_{t}"
    # a compound argument of an activation gets \left( \right)
    assert latex(Act(tanh, f * C)) == r"\tanh\left(f_{t} \circ C_{t}\right)"
    assert latex(Outer(f + o, x)) == r"\left(f_{t} + o_{t}\right)\, x_{t}^{\top}"


def test_user_activation_uses_operatorname():
    import sympy
    softsign = scalar_activation("softsign_test", lambda z: z / (1 + sympy.Abs(z)))
    assert latex(Act(softsign, f_bar)) == r"\operatorname{softsign_test}(\bar{f}_{t})"
    assert latex(ActDeriv(softsign, f_bar)) == r"\operatorname{softsign_test}'(\bar{f}_{t})"


def test_unknown_object_is_a_clear_error():
    with pytest.raises(TypeError, match="cannot print"):
        latex(object())


@pytest.mark.parametrize("name", cell_names())
def test_every_cell_prints(name):
    """Every forward equation and every derived gradient of every registered cell prints."""
    d = derive(get_cell(name))
    for eq in d.cell.equations:
        assert latex(eq.expr)
    for v in d.order:
        assert latex(d.grad(v))
    for p in d.params:
        assert latex(d.param_grad(p))


# --- document printers (lstmsym.printing.layout) ----------------------------------------------
def test_document_text_is_escaped_for_each_output():
    from lstmsym.printing.layout import Document, Math, Paragraph, to_latex, to_markdown
    doc = Document("a_b", (Paragraph(("50% of x_t & y|z $1 ", Math(r"\sigma(x)"), " σ")),))
    assert to_latex(doc) == (r"\section*{a\_b}" "\n\n"
                             r"50\% of x\_t \& y\textbar{}z \$1 $\sigma(x)$ $\sigma$" "\n")
    assert to_markdown(doc) == "# a\\_b\n\n50% of x\\_t & y\\|z \\$1 $\\sigma(x)$ σ\n"


def test_long_sums_break_at_terms_in_both_outputs():
    from lstmsym.printing.layout import Align, Document, Row, to_latex, to_markdown
    terms = tuple(("+" if k % 2 == 0 else "-", r"\nabla_{C_{t}}\mathrm{Div} \circ f_{%d}" % k)
                  for k in range(8))
    doc = Document("d", (Align((Row("y", terms),)),))
    tex, md = to_latex(doc), to_markdown(doc)
    body = tex[tex.index("align*}\n") + 7:tex.index(r"\end{align*}")].strip()
    lines = body.split(" \\\\\n")
    assert len(lines) > 1 and lines[0].startswith("y &= ")
    assert all(line.startswith(r"&\quad ") for line in lines[1:])
    # every term appears once, with its sign, in order
    joined = " ".join(line.replace("y &= ", "").replace(r"&\quad ", "") for line in lines)
    assert joined == terms[0][1] + "".join(f" {s} {t}" for s, t in terms[1:])
    assert body in md


def test_split_signed_finds_the_top_level_terms_of_printed_math():
    from lstmsym.printing.layout import split_signed
    e = f - W_hf.T @ (f + o) + Act(tanh, f - o)
    assert split_signed(latex(e)) == [("+", "f_{t}"), ("-", latex(W_hf.T @ (f + o))),
                                      ("+", latex(Act(tanh, f - o)))]
    assert split_signed(r"\sigma\bigl(a + b\bigr) - c") == [("+", r"\sigma\bigl(a + b\bigr)"),
                                                           ("-", "c")]
    assert split_signed(r"\left(a + b") is None          # unbalanced: left alone


def test_docstring_examples_run():
    import doctest
    from importlib import import_module

    # import_module: lstmsym.printing also has a function called latex
    for name in ("lstmsym.printing.latex", "lstmsym.printing.layout",
                 "lstmsym.printing.document"):
        module = import_module(name)
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
