"""The proof over the registry: every derived formula equals SymPy's derivative of the loss.

The default run proves a representative set of cells at hidden size 2 (a plain RNN with ReLU,
the 1997 memory-cell blocks with their truncation, both GRUs, a Greff variant, a user cell);
the exhaustive run, every registered cell at hidden sizes 2 and 3, exact and 1997-truncated,
is marked slow.
"""
import pytest
import sympy

from lstmsym.cells import cell_names, get_cell
from lstmsym.cells.spec import CellBuilder
from lstmsym.derive import derive
from lstmsym.expr import Repeat
from lstmsym.ops import Activation, relu, sigmoid, tanh
from lstmsym.verification.symbolic import (Instance, formulas, instance_sizes, prove,
                                           prove_derivation)

REPRESENTATIVE = ["elman-relu", "gru", "gru-torch", "lstm-cifg", "lstm1997-blocks"]


def _assert_all_proven(verdicts, d):
    assert [v.name for v in verdicts] == [f[0] for f in formulas(d)]
    bad = [v.line() for v in verdicts if not v.ok]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_representative_cells_proven_at_hidden_2(name):
    cell = get_cell(name)
    verdicts = prove(cell, hidden_sizes=(2,))
    _assert_all_proven(verdicts, derive(cell))
    assert all(v.method == "exact" for v in verdicts)


def test_1997_truncation_proven_for_the_1997_cell():
    cell = get_cell("lstm1997")
    verdicts = prove(cell, hidden_sizes=(2,), truncation="1997")
    _assert_all_proven(verdicts, derive(cell, truncation="1997"))


def test_every_kind_of_formula_is_proven():
    d = derive(get_cell("lstm"))
    kinds = {kind for _, kind, _, _ in formulas(d)}
    assert kinds == {"grad", "carry", "param", "input"}
    assert len(formulas(d)) == len(d.grads) + len(d.carry) + len(d.params) + len(d.inputs)


def test_a_user_cell_with_relu_blocks_and_a_user_activation():
    isru = Activation("isru", r"\operatorname{isru}", lambda z: z / sympy.sqrt(1 + z**2))
    b = CellBuilder("toy-blocks")
    x, h = b.input("x"), b.state("h")
    r = b.let("r", relu(b.param("W", ("H", "I")) @ x + b.param("U", ("H", "H")) @ h))
    g = b.let("g", sigmoid(b.param("W_g", ("G", "I")) @ x + b.param("b_g", ("G",))))
    n = b.let("n", isru(b.param("W_n", ("H", "I")) @ x))
    b.let("h", Repeat(g, 2, "H") * r + (1 - Repeat(g, 2, "H")) * h + tanh(n))
    b.dims["G"] = ("H", 2)
    cell = b.build()
    for truncation in (None, "1997"):
        verdicts = prove(cell, hidden_sizes=(2,), truncation=truncation)
        _assert_all_proven(verdicts, derive(cell, truncation=truncation))


def test_sizes_respect_memory_blocks():
    cell = get_cell("lstm1997-blocks")
    (dim, (base, k)), = cell.dims.items()
    sizes = instance_sizes(cell, (2, 3))
    assert len(sizes) == 2
    for s in sizes:
        assert s["H"] % k == 0 and s[dim] == s["H"] // k
    assert instance_sizes(get_cell("lstm"), (2, 3)) == [{"H": 2, "I": 2}, {"H": 3, "I": 2}]


def test_progress_reports_each_formula():
    d = derive(get_cell("elman-tanh"))
    seen = []
    verdicts = prove_derivation(d, (2,), progress=lambda done, total, v: seen.append(
        (done, total, v.name)))
    assert seen == [(i + 1, len(verdicts), v.name) for i, v in enumerate(verdicts)]


def test_numeric_fallback_is_said_and_decides_identities_atoms_cannot_see():
    inst = Instance(get_cell("elman-tanh"), {"H": 2, "I": 2}, ("h",))
    u = sympy.Symbol("u", real=True)
    same = inst.compare(sympy.Matrix([sympy.tanh(2 * u)]),
                        sympy.Matrix([2 * sympy.tanh(u) / (1 + sympy.tanh(u) ** 2)]))
    assert same[0] and same[1] == "numeric-fallback" and same[2] < 1e-30
    differ = inst.compare(sympy.Matrix([sympy.tanh(2 * u)]), sympy.Matrix([2 * sympy.tanh(u)]))
    assert not differ[0] and differ[1] == "numeric" and differ[2] > 1e-3


def test_exact_means_zero_polynomial_not_luck():
    """The exact check says no to a difference that is zero only at some points."""
    inst = Instance(get_cell("elman-tanh"), {"H": 2, "I": 2}, ("h",))
    u = sympy.Symbol("u", real=True)
    ok, method, worst = inst.compare(sympy.Matrix([u**2]), sympy.Matrix([u]))
    assert not ok and worst > 0


@pytest.mark.slow
@pytest.mark.parametrize("truncation", [None, "1997"])
@pytest.mark.parametrize("name", cell_names())
def test_every_cell_proven_at_hidden_2_and_3(name, truncation):
    cell = get_cell(name)
    verdicts = prove(cell, hidden_sizes=(2, 3), truncation=truncation)
    _assert_all_proven(verdicts, derive(cell, truncation=truncation))


def _flat(inst, e, memo):
    """``e`` with nodes and function atoms written out: one plain SymPy expression."""
    def sym(s):
        if s not in memo:
            if s in inst.atoms.defs:
                memo[s] = _flat(inst, inst.atoms.defs[s], memo)
            elif inst.atoms.is_atom(s):
                func, args = inst.atoms.key_of[s]
                memo[s] = func(*[_flat(inst, a, memo) for a in args])
            else:
                memo[s] = s
        return memo[s]
    return e.xreplace({s: sym(s) for s in e.free_symbols})


@pytest.mark.parametrize("name, kind, key, entry", [
    ("elman-tanh", "carry", "h", 1),
    ("elman-tanh", "param", "W", 1),
    pytest.param("lstm", "grad", "C", 0, marks=pytest.mark.slow),
    pytest.param("lstm", "carry", "h", 1, marks=pytest.mark.slow),
    pytest.param("lstm", "param", "W_hf", 1, marks=pytest.mark.slow),
])
def test_truth_equals_one_sympy_diff_of_the_flat_loss(name, kind, key, entry):
    """The derivative the proof uses (SymPy's diff node by node, chain rule through nodes and
    atoms) equals ``sympy.diff`` of the whole loss written out as one expression."""
    import random
    cell = get_cell(name)
    inst = Instance(cell, {"H": 2, "I": 2}, ("h",))
    if kind == "grad":
        var = next(v for v in derive(cell).grads if v.name == key)
        mine, wrt = inst.truth(kind, var)[entry], inst.eps[(key, 0)][entry]
    elif kind == "carry":
        mine, wrt = inst.truth(kind, key)[entry], inst.env.leaf(cell.state(key).at(-1))[entry]
    else:
        mine, wrt = inst.truth(kind, key)[entry], inst.eps[(key, "param")][entry]
    memo = {}
    reference = sympy.diff(_flat(inst, inst.loss, memo), wrt)
    mine = _flat(inst, mine, memo)
    rng = random.Random(1)
    free = sorted(reference.free_symbols | mine.free_symbols, key=str)
    for _ in range(2):
        point = {s: 0 if s.name.startswith("eps_") else
                 sympy.Rational(rng.randint(-1500, 1500), 1000) for s in free}
        a = sympy.N(reference.xreplace(point), 40)
        b = sympy.N(mine.xreplace(point), 40)
        assert abs(a - b) < 1e-30 * max(1, abs(a))
        assert abs(a) > 1e-6        # a derivative that is not trivially zero
