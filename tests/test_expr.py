"""The vector expression tree: shapes, smart constructors, time shifts."""
import pytest

from lstmsym.errors import ShapeError
from lstmsym.expr import Add, Grad, Had, MatVec, Ones, Scale, Sym, Zero, had, shift, substitute
from lstmsym.ops import sigmoid

W = Sym("W", "param", ("H", "I"))
U = Sym("U", "param", ("H", "H"))
x = Sym("x", "input", ("I",))
h = Sym("h", "state", ("H",), -1)
b = Sym("b", "param", ("H",))


def test_operators_build_the_primitives():
    e = W @ x + U @ h + b
    assert isinstance(e, Add) and len(e.args) == 3
    assert isinstance(e.args[0], MatVec) and e.shape == ("H",)
    assert isinstance(h * b, Had)
    one_minus = 1 - h
    assert one_minus.args[0] == Ones(("H",)) and one_minus.args[1] == Scale(-1, h)


def test_transpose_and_shapes():
    assert (W.T @ (U @ h)).shape == ("I",)
    with pytest.raises(ShapeError, match="cannot multiply"):
        W @ h
    with pytest.raises(ShapeError, match="different shapes"):
        x + h


def test_had_drops_ones_and_folds_constants():
    assert had(Ones(("H",)), h) == h
    assert had(Scale(-1, h), Scale(2, b)) == Scale(-2, Had((h, b)))
    assert isinstance(had(Zero(("H",)), h), Zero)


def test_shift_moves_every_time_index_but_not_parameters():
    e = sigmoid(U @ h) * Grad(h.at(0))
    s = shift(e, 1)
    assert h.at(0) in s.syms() and U in s.syms()
    assert Grad(h.at(1)) in set(s.walk())


def test_substitute_replaces_whole_subtrees():
    g = Grad(h.at(0))
    e = had(g, b)
    assert substitute(e, {g: b}) == Had((b, b))
