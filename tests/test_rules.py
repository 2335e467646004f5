"""Every row of the rules table proven against SymPy's scalar ``diff`` of the same operation.

For y = op(children) at small sizes (vectors of 2-4 scalar symbols, a non-square 3x2 matrix)
and a cotangent g of symbols, each contribution a rule returns must equal the gradient of
<g, y> with respect to that child, computed entry by entry with ``sympy.diff``. Each
activation's derivative is checked against SymPy's ``diff`` of its rewrite to elementary
functions, exactly.
"""
from fractions import Fraction

import pytest
import sympy

from lstmsym.expr import (Act, Add, BlockSum, Grad, Had, MatVec, Ones, Repeat, Scale, Sym, Zero,
                          had)
from lstmsym.ops import ACTIVATIONS, Activation, ReLU, Sigmoid, relu
from lstmsym.rules import RULES, vjp
from lstmsym.verification.scalar import ScalarEnv, instantiate

SIZES = {"H": 3, "I": 2, "G": 2, "K": 4}


def vec(name, dim="H"):
    return Sym(name, "var", (dim,))


def mat(name, shape=("H", "I")):
    return Sym(name, "param", shape)


a, b, c = vec("a"), vec("b"), vec("c")
W = mat("W")                       # 3 x 2: not square, so a missing transpose cannot pass
v_in = vec("v", "I")
k_blocks = vec("k", "G")          # G = 2 blocks of 2 cells in K = 4
k_cells = vec("q", "K")
# a user activation, built directly so the registry of activations is left as it is
isru = Activation("isru", r"\operatorname{isru}", lambda z: z / sympy.sqrt(1 + z**2))

CASES = {
    "add": Add((a, b, c)),
    "scale 3/2": Scale(Fraction(3, 2), a),
    "scale -1": Scale(Fraction(-1), b),
    "had 2": Had((a, b)),
    "had 3": Had((a, b, c)),
    "had repeated factor": Had((a, a, b)),
    "matvec": MatVec(W, v_in),
    "matvec transposed": MatVec(W, a, transpose=True),
    "repeat": Repeat(k_blocks, 2, "K"),
    "blocksum": BlockSum(k_cells, 2, "G"),
    **{f"act {name}": Act(fn, a) for name, fn in ACTIVATIONS.items()},
    "act user isru": Act(isru, a),
    "ones": Ones(("H",)),
    "zero": Zero(("H",)),
}


def test_every_row_has_a_case():
    assert {type(y) for y in CASES.values()} == set(RULES)


def _gradient_of_pairing(y, child, env):
    """nabla_child <g, y> by SymPy's scalar diff, in the shape of the child."""
    g = instantiate(Grad(Sym("y", "var", y.shape)), env)
    pairing = (g.T * instantiate(y, env))[0]
    m = instantiate(child, env)
    return m.applyfunc(lambda s: sympy.diff(pairing, s))


@pytest.mark.parametrize("name", list(CASES))
def test_rule_matches_sympy_diff(name):
    y = CASES[name]
    env = ScalarEnv(SIZES)
    g = Grad(Sym("y", "var", y.shape))
    contributions = vjp(y, g)
    children = [ch for ch in dict.fromkeys(y.children())]
    # each child gets the sum of what the rule sends it (a repeated factor gets two terms)
    got = {}
    for child, term in contributions:
        value = instantiate(term, env)
        got[child] = value if child not in got else got[child] + value
    assert set(got) == set(children), f"{name}: rule covers {set(got)}, node has {children}"
    for child in children:
        expected = _gradient_of_pairing(y, child, env)
        diff = (got[child] - expected).applyfunc(sympy.expand)
        assert diff == sympy.zeros(*expected.shape), f"{name}: wrong gradient for {child!r}"


def test_a_wrong_rule_is_caught():
    """The comparison above fails for a Hadamard rule that drops a factor."""
    y = CASES["had 3"]
    env = ScalarEnv(SIZES)
    g = Grad(Sym("y", "var", y.shape))
    wrong = had(g, b)          # should be g o b o c for child a
    diff = (instantiate(wrong, env) - _gradient_of_pairing(y, a, env)).applyfunc(sympy.expand)
    assert diff != sympy.zeros(3, 1)


# ----- activations --------------------------------------------------------------------------------
z = sympy.Symbol("z", real=True)
zp = sympy.Symbol("zp", positive=True)


def test_sigmoid_fdiff_equals_diff_of_rewrite():
    ours = sympy.diff(Sigmoid(z), z).rewrite(sympy.exp)
    theirs = sympy.diff(Sigmoid(z).rewrite(sympy.exp), z)
    assert sympy.simplify(ours - theirs) == 0


def test_relu_fdiff_equals_diff_of_rewrite_away_from_the_kink():
    ours = sympy.diff(ReLU(z), z)
    theirs = sympy.diff(ReLU(z).rewrite(sympy.Max), z)
    for point in (zp, -zp):      # both sides of 0; at 0 itself the derivative does not exist
        assert sympy.simplify(ours.subs(z, point) - theirs.subs(z, point)) == 0
    assert relu.deriv(z) == sympy.Heaviside(z, 0)     # the convention taken at the kink: 0


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_deriv_equals_diff_of_rewrite(name):
    fn = ACTIVATIONS[name]
    expected = sympy.diff(fn.scalar(z).rewrite(sympy.exp).rewrite(sympy.Max), z)
    for point in (zp, -zp):
        got = fn.deriv(z).rewrite(sympy.exp).subs(z, point)
        assert sympy.simplify(got - expected.subs(z, point)) == 0


@pytest.mark.parametrize("name", [n for n, f in ACTIVATIONS.items()
                                  if f.deriv_output is not None])
def test_deriv_through_output_equals_diff(name):
    """sigma' = y(1-y), tanh' = 1-y^2, g' = (4-y^2)/4, h' = (1-y^2)/2 with y = f(z)."""
    fn = ACTIVATIONS[name]
    y = fn.scalar(z)
    through_output = fn.deriv_output(y).rewrite(sympy.exp)
    expected = sympy.diff(y.rewrite(sympy.exp), z)
    assert sympy.simplify(through_output - expected) == 0


def test_a_wrong_output_derivative_is_caught():
    y = Sigmoid(z)
    wrong = (y * (1 + y)).rewrite(sympy.exp)
    assert sympy.simplify(wrong - sympy.diff(y.rewrite(sympy.exp), z)) != 0
