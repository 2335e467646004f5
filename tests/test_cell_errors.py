"""Bad input: an ill-formed cell raises an lstmsym error that names the equation, never a SymPy or
Python traceback from inside the library (issue 3, "Bad input"; issue 2, item 2)."""
import pytest

from lstmsym.cells import Cell, CellBuilder, Equation
from lstmsym.errors import CellError, LstmsymError, ShapeError
from lstmsym.expr import Sym
from lstmsym.ops import sigmoid, tanh


def elman_builder(name="bad"):
    b = CellBuilder(name)
    x, h = b.input("x"), b.state("h")
    W, U = b.param("W", ("H", "I")), b.param("U", ("H", "H"))
    return b, x, h, W, U


def test_undefined_symbol_names_the_equation_and_the_symbol():
    b, x, h, W, U = elman_builder()
    q = Sym("q", "var", ("H",))
    b.let("h", tanh(W @ x + U @ h + q))
    with pytest.raises(CellError, match=r"equation 1 \(h_bar = …\): undefined symbol 'q'"):
        b.build()


def test_undeclared_input_is_undefined():
    b, x, h, W, U = elman_builder()
    u = Sym("u", "input", ("I",))
    b.let("h", tanh(W @ u + U @ h))
    with pytest.raises(CellError, match=r"h_bar = …\): undefined symbol 'u'"):
        b.build()


def test_state_never_updated():
    b, x, h, W, U = elman_builder()
    b.state("C")
    b.let("h", tanh(W @ x + U @ h))
    with pytest.raises(CellError, match="state 'C' has no update equation"):
        b.build()


def test_previous_value_of_a_non_state():
    b, x, h, W, U = elman_builder()
    f_prev = Sym("f", "var", ("H",), -1)
    f = b.let("f", sigmoid(W @ x + U @ h))
    b.let("h", f * f_prev)
    with pytest.raises(CellError, match=r"equation 3 \(h = …\): f_\(t-1\) is not a carried state"):
        b.build()


def test_matrix_that_cannot_multiply_names_both_operands():
    b, x, h, W, U = elman_builder()
    with pytest.raises(ShapeError, match=r"U @ x\[t\]: a HxH matrix cannot multiply a vector of "
                                         r"size I"):
        U @ x


def test_sum_of_different_shapes_names_the_operands():
    b, x, h, W, U = elman_builder()
    with pytest.raises(ShapeError, match=r"sum of operands with different shapes \(W@x\[t\]: "
                                         r"\('H',\), x\[t\]: \('I',\)\)"):
        W @ x + x


def test_state_update_of_the_wrong_shape_names_the_equation():
    b = CellBuilder("bad")
    x, h = b.input("x"), b.state("h")
    G = b.dim("G", "H", 2)
    V = b.param("V", (G, "I"))
    b.let("h", tanh(V @ x))
    with pytest.raises(ShapeError, match=r"equation 2 \(h = …\): state 'h' is declared with "
                                         r"shape \('H',\), its update has shape \('G',\)"):
        b.build()


def test_unknown_dimension_names_the_parameter():
    b, x, h, W, U = elman_builder()
    K = b.param("K", ("H", "Q"))
    with pytest.raises(CellError, match=r"parameter 'K' has shape \('H', 'Q'\) with unknown "
                                        r"dimension 'Q'"):
        b.let("h", tanh(W @ x + U @ h + K @ Sym("y", "input", ("Q",))))
        b.build()


def test_gate_that_depends_on_itself():
    b, x, h, W, U = elman_builder()
    f = Sym("f", "var", ("H",))
    b.let("f", sigmoid(W @ x + U @ f))
    b.let("h", f * h)
    with pytest.raises(CellError, match=r"equation 1 \(f_bar = …\): uses f_t before it is defined "
                                        r"\(equation 2, which comes later\)"):
        b.build()


def test_raw_equation_that_uses_its_own_target():
    x, h = Sym("x", "input", ("I",)), Sym("h", "state", ("H",))
    U = Sym("U", "param", ("H", "H"))
    with pytest.raises(CellError, match=r"equation 1 \(h = …\): uses h_t before it is defined "
                                        r"\(itself\)"):
        Cell("loop", (x,), (h,), (U,), (Equation(h, tanh(U @ h)),))


def test_gate_that_depends_on_a_later_gate():
    b, x, h, W, U = elman_builder()
    o = Sym("o", "var", ("H",))
    i = b.let("i", sigmoid(W @ x + o))
    o_real = b.let("o", sigmoid(U @ h))
    b.let("h", i * o_real)
    with pytest.raises(CellError, match=r"equation 1 \(i_bar = …\): uses o_t before it is defined "
                                        r"\(equation 4, which comes later\)"):
        b.build()


def test_name_assigned_twice_in_the_builder():
    b, x, h, W, U = elman_builder()
    b.let("f", sigmoid(W @ x))
    with pytest.raises(CellError, match=r"equation 3 \(f = …\): 'f_bar' is assigned twice "
                                        r"\(first in equation 1"):
        b.let("f", sigmoid(U @ h))


def test_name_assigned_twice_in_a_raw_cell():
    x, h = Sym("x", "input", ("I",)), Sym("h", "state", ("H",))
    W = Sym("W", "param", ("H", "I"))
    a = Sym("a", "var", ("H",))
    eqs = (Equation(a, W @ x), Equation(a, tanh(W @ x)), Equation(h, a))
    with pytest.raises(CellError, match=r"equation 2 \(a = …\): 'a' is assigned twice"):
        Cell("twice", (x,), (h,), (W,), eqs)


def test_assigning_to_a_parameter():
    x, h = Sym("x", "input", ("I",)), Sym("h", "state", ("H",))
    W = Sym("W", "param", ("H", "I"))
    eqs = (Equation(Sym("W", "var", ("H",)), W @ x), Equation(h, W @ x))
    with pytest.raises(CellError, match=r"equation 1 \(W = …\): assigns to 'W'"):
        Cell("bad", (x,), (h,), (W,), eqs)


def test_unused_parameter():
    b, x, h, W, U = elman_builder()
    b.param("V", ("H", "H"))
    b.let("h", tanh(W @ x + U @ h))
    with pytest.raises(CellError, match="parameter 'V' is declared but no equation uses it"):
        b.build()


def test_right_hand_side_that_is_not_an_expression():
    b, x, h, W, U = elman_builder()
    with pytest.raises(CellError, match=r"equation for 'h': right-hand side is int"):
        b.let("h", 3)


def test_constant_that_is_not_a_number():
    b, x, h, W, U = elman_builder()
    with pytest.raises(CellError, match="cannot combine str 'a' with a vector expression"):
        h * "a"
    assert repr(0.5 * h) == "1/2*h[t-1]"      # a float constant is fine


def test_cell_without_state():
    b = CellBuilder("stateless")
    b.input("x")
    with pytest.raises(CellError, match="declares no state"):
        b.build()


def test_output_that_is_not_a_state():
    b, x, h, W, U = elman_builder()
    b.let("h", tanh(W @ x + U @ h))
    with pytest.raises(CellError, match="output 'y' is not a state"):
        b.build(outputs=("y",))


def test_block_dimension_needs_a_positive_integer():
    b = CellBuilder("bad")
    with pytest.raises(CellError, match="dimension 'G' needs a positive integer factor"):
        b.dim("G", "H", 0)


def test_errors_are_lstmsym_errors_with_exit_status_2():
    assert issubclass(ShapeError, CellError) and issubclass(CellError, LstmsymError)
    assert CellError.exit_code == 2
