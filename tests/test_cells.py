"""The cell zoo: every registered cell validates, derives, and computes its published equations.

The forward step of each cell, instantiated at small sizes with scalar symbols, is compared with
the equations of its source written out here directly in SymPy (REFERENCES.md), not with the
cell's own expression tree. Greff et al.'s variants are checked against the vanilla formula with
the one change the paper names, which also shows that each edit changes exactly that.
"""
import pytest
import sympy

from lstmsym.cells import CellBuilder, cell_names, get_cell, register
from lstmsym.cells import edits
from lstmsym.cells.zoo import lstm1997_cell
from lstmsym.derive import derive
from lstmsym.expr import Repeat
from lstmsym.ops import Sigmoid, sigmoid, tanh
from lstmsym.verification.scalar import ScalarEnv, forward_step

EXPECTED = {
    "elman-tanh", "elman-relu", "elman-sigmoid", "linear", "lstm1997", "lstm1997-blocks",
    "lstm", "peephole-lstm", "peephole-lstm-full", "gru", "gru-torch", "lstm-nig", "lstm-nfg",
    "lstm-nog", "lstm-niaf", "lstm-noaf", "lstm-np", "lstm-cifg", "lstm-fgr",
}


# ----- scalar reference equations (REFERENCES.md), independent of the cells' trees ----------------
def sig(m):
    return m.applyfunc(Sigmoid)


def th(m):
    return m.applyfunc(sympy.tanh)


def relu(m):
    return m.applyfunc(lambda z: sympy.Max(0, z))


def had(a, b):
    return a.multiply_elementwise(b)


def ones_like(m):
    return sympy.ones(m.rows, 1)


class Step:
    """One instantiated forward step: p("W") parameters, x, prev("h") and the cell's results."""

    def __init__(self, cell, sizes):
        self.cell, self.env = cell, ScalarEnv(sizes)
        out = forward_step(cell, self.env)
        self.new = {s.name: out[s.at(0)] for s in cell.states}
        self.x = self.env.leaf(cell.inputs[0])

    def p(self, name):
        return self.env.leaf(self.cell.param(name))

    def prev(self, name):
        return self.env.leaf(self.cell.state(name).prev)


def ref_elman(s, f):
    return {"h": f(s.p("W") * s.x + s.p("U") * s.prev("h") + s.p("b"))}


def ref_lstm1997(s, S):
    """Hochreiter & Schmidhuber 1997: CEC s_c(t) = s_c(t-1) + y^in g(net_c), y^c = y^out h(s_c)."""
    p, x, y = s.p, s.x, s.prev("h")

    def rep(v):
        return sympy.Matrix([v[k // S] for k in range(v.rows * S)])

    y_in = sig(p("W_in_x") * x + p("W_in_h") * y + p("b_in"))
    y_out = sig(p("W_out_x") * x + p("W_out_h") * y + p("b_out"))
    g = (p("W_c_x") * x + p("W_c_h") * y + p("b_c")).applyfunc(lambda z: 4 * Sigmoid(z) - 2)
    s_c = s.prev("C") + had(rep(y_in), g)
    return {"C": s_c, "h": had(rep(y_out), s_c.applyfunc(lambda z: 2 * Sigmoid(z) - 1))}


def ref_lstm(s, peep=None):
    """Gers et al. 2000 / PyTorch; peep="diag" is Greff's vanilla LSTM, "full" the lecture's."""
    p, x, h, C = s.p, s.x, s.prev("h"), s.prev("C")

    def pp(name, c):
        if peep is None:
            return sympy.zeros(c.rows, 1)
        return had(p("w_" + name), c) if peep == "diag" else p("W_" + name) * c

    f = sig(p("W_xf") * x + p("W_hf") * h + pp("Cf", C) + p("b_f"))
    i = sig(p("W_xi") * x + p("W_hi") * h + pp("Ci", C) + p("b_i"))
    z = th(p("W_xC") * x + p("W_hC") * h + p("b_C"))
    C_new = had(f, C) + had(i, z)
    o = sig(p("W_xo") * x + p("W_ho") * h + pp("Co", C_new) + p("b_o"))
    return {"C": C_new, "h": had(o, th(C_new))}


def ref_greff(s, variant):
    """Greff et al. 2017 Sec. II vanilla LSTM with the single change of ``variant``."""
    p, x, y, c = s.p, s.x, s.prev("h"), s.prev("C")
    fgr = variant == "FGR"

    def gate(g, peep):
        pre = p(f"W_x{g}") * x + p(f"W_h{g}") * y + p(f"b_{g}")
        if variant != "NP":
            pre += had(p(f"w_C{g}"), peep)
        if fgr:
            for src in "ifo":
                pre += p(f"R_{src}{g}") * s.prev(src)
        return sig(pre)

    zbar = p("W_xC") * x + p("W_hC") * y + p("b_C")
    z = zbar if variant == "NIAF" else th(zbar)
    i = ones_like(c) if variant == "NIG" else gate("i", c)
    if variant == "CIFG":
        f = ones_like(c) - i
    else:
        f = ones_like(c) if variant == "NFG" else gate("f", c)
    c_new = had(z, i) + had(c, f)
    o = ones_like(c) if variant == "NOG" else gate("o", c_new)
    hc = c_new if variant == "NOAF" else th(c_new)
    out = {"C": c_new, "h": had(hc, o)}
    if fgr:
        out.update(i=i, f=f, o=o)
    return out


def ref_gru(s):
    """Cho et al. 2014 eqs. (5)-(8): reset before the matrix, z keeps the old state."""
    p, x, h = s.p, s.x, s.prev("h")
    r = sig(p("W_xr") * x + p("W_hr") * h + p("b_r"))
    z = sig(p("W_xz") * x + p("W_hz") * h + p("b_z"))
    n = th(p("W_xn") * x + p("W_hn") * had(r, h) + p("b_n"))
    return {"h": had(ones_like(z) - z, n) + had(z, h)}


def ref_gru_torch(s):
    """torch.nn.GRU documentation: n = tanh(W_in x + b_in + r o (W_hn h + b_hn))."""
    p, x, h = s.p, s.x, s.prev("h")
    r = sig(p("W_xr") * x + p("W_hr") * h + p("b_r"))
    z = sig(p("W_xz") * x + p("W_hz") * h + p("b_z"))
    n = th(p("W_xn") * x + p("b_xn") + had(r, p("W_hn") * h + p("b_hn")))
    return {"h": had(ones_like(z) - z, n) + had(z, h)}


REFERENCE = {
    "elman-tanh": lambda s: ref_elman(s, th),
    "elman-relu": lambda s: ref_elman(s, relu),
    "elman-sigmoid": lambda s: ref_elman(s, sig),
    "linear": lambda s: {"h": s.p("W") * s.prev("h") + s.p("C") * s.x},
    "lstm1997": lambda s: ref_lstm1997(s, 1),
    "lstm1997-blocks": lambda s: ref_lstm1997(s, 2),
    "lstm": ref_lstm,
    "peephole-lstm": lambda s: ref_lstm(s, "diag"),
    "peephole-lstm-full": lambda s: ref_lstm(s, "full"),
    "gru": ref_gru,
    "gru-torch": ref_gru_torch,
    **{f"lstm-{v.lower()}": (lambda s, v=v: ref_greff(s, v))
       for v in ("NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG", "FGR")},
}


def _equal(a, b):
    diff = (a - b).applyfunc(lambda e: sympy.expand(e.rewrite(sympy.Max)))
    return diff == sympy.zeros(*diff.shape)


# ----- the registry -----------------------------------------------------------------------------
def test_registry_has_every_cell_of_the_issue():
    assert EXPECTED <= set(cell_names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_forward_step_is_the_published_equation(name):
    cell = get_cell(name)
    sizes = {"I": 3, "H": 4, "G": 2} if name == "lstm1997-blocks" else {"I": 3, "H": 2}
    step = Step(cell, sizes)
    ref = REFERENCE[name](step)
    assert set(ref) == set(cell.state_names)
    for state, value in ref.items():
        assert _equal(step.new[state], value), f"{name}: state {state} differs from its source"


@pytest.mark.parametrize("name", cell_names())
def test_every_cell_is_documented_sized_and_derivable(name):
    cell = get_cell(name)
    assert cell.name == name
    assert cell.source and cell.description
    dims = {d for p in cell.params for d in p.shape}
    assert dims <= {"I", "H", "G"}
    assert ("G" in dims) == ("G" in cell.dims)
    for truncation in (None, "1997"):
        d = derive(cell, truncation=truncation)
        assert set(d.params) == {p.name for p in cell.params}
        assert all(d.params[p.name] for p in cell.params), "a parameter without gradient"


# ----- parameter names other helpers rely on ---------------------------------------------------------
@pytest.mark.parametrize("name,params", [
    ("elman-tanh", [("W", ("H", "I")), ("U", ("H", "H")), ("b", ("H",))]),
    ("elman-relu", [("W", ("H", "I")), ("U", ("H", "H")), ("b", ("H",))]),
    ("elman-sigmoid", [("W", ("H", "I")), ("U", ("H", "H")), ("b", ("H",))]),
    ("linear", [("W", ("H", "H")), ("C", ("H", "I"))]),
    ("gru", [("W_xr", ("H", "I")), ("W_hr", ("H", "H")), ("b_r", ("H",)),
             ("W_xz", ("H", "I")), ("W_hz", ("H", "H")), ("b_z", ("H",)),
             ("W_xn", ("H", "I")), ("W_hn", ("H", "H")), ("b_n", ("H",))]),
    ("gru-torch", [("W_xr", ("H", "I")), ("W_hr", ("H", "H")), ("b_r", ("H",)),
                   ("W_xz", ("H", "I")), ("W_hz", ("H", "H")), ("b_z", ("H",)),
                   ("W_xn", ("H", "I")), ("b_xn", ("H",)), ("W_hn", ("H", "H")),
                   ("b_hn", ("H",))]),
])
def test_parameter_names_and_order(name, params):
    assert [(p.name, p.shape) for p in get_cell(name).params] == params


def test_lstm_and_peephole_parameter_names_are_kept():
    assert [p.name for p in get_cell("lstm").params] == [
        "W_hf", "W_xf", "b_f", "W_hi", "W_xi", "b_i", "W_hC", "W_xC", "b_C", "W_ho", "W_xo", "b_o"]
    pl = get_cell("peephole-lstm")
    assert [p.shape for p in pl.params if p.name.startswith("w_C")] == [("H",)] * 3
    full = get_cell("peephole-lstm-full")
    assert [(p.name, p.shape) for p in full.params if p.name.startswith("W_C")] == [
        ("W_Cf", ("H", "H")), ("W_Ci", ("H", "H")), ("W_Co", ("H", "H"))]


# ----- the 1997 LSTM ----------------------------------------------------------------------------------
def test_lstm1997_has_no_forget_gate_and_a_negative_output_bias():
    cell = get_cell("lstm1997")
    assert cell.state_names == ("h", "C")
    assert cell.equation("C").expr.args[0] == cell.state("C").prev   # s_c(t-1) with weight 1
    assert not any(isinstance(n, Repeat) for e in cell.equations for n in e.expr.walk())
    assert cell.init["b_out"] < 0
    assert cell.state("C").latex == "s_c"


def test_lstm1997_blocks_share_gates():
    cell = get_cell("lstm1997-blocks")
    assert cell.dims == {"G": ("H", 2)}
    assert cell.param("W_in_h").shape == ("G", "H") and cell.param("W_c_h").shape == ("H", "H")
    reps = [n for e in cell.equations for n in e.expr.walk() if isinstance(n, Repeat)]
    assert len(reps) == 2 and all(r.k == 2 and r.shape == ("H",) for r in reps)
    assert cell.init["b_out"] < 0
    three = lstm1997_cell(block_size=3)
    assert three.dims == {"G": ("H", 3)} and three.name == "lstm1997-blocks3"


# ----- variants are edits ---------------------------------------------------------------------------
def test_dropping_peepholes_from_the_peephole_cells_gives_the_forget_gate_lstm():
    base = get_cell("lstm")
    for name in ("peephole-lstm", "peephole-lstm-full"):
        assert edits.drop_peepholes(get_cell(name)).equations == base.equations
    assert get_cell("lstm-np").equations == base.equations


def test_variants_drop_exactly_the_parameters_of_what_they_remove():
    vanilla = {p.name for p in get_cell("peephole-lstm").params}
    gone = {
        "lstm-nig": {"W_xi", "W_hi", "w_Ci", "b_i"}, "lstm-nfg": {"W_xf", "W_hf", "w_Cf", "b_f"},
        "lstm-nog": {"W_xo", "W_ho", "w_Co", "b_o"}, "lstm-niaf": set(), "lstm-noaf": set(),
        "lstm-np": {"w_Ci", "w_Cf", "w_Co"}, "lstm-cifg": {"W_xf", "W_hf", "w_Cf", "b_f"},
    }
    for name, removed in gone.items():
        assert {p.name for p in get_cell(name).params} == vanilla - removed, name
    fgr = get_cell("lstm-fgr")
    assert {p.name for p in fgr.params} - vanilla == {f"R_{a}{b}" for a in "ifo" for b in "ifo"}
    assert fgr.state_names == ("h", "C", "i", "f", "o") and fgr.outputs == ("h",)


def test_edits_apply_to_other_bases():
    # f = 1 on the forget-gate LSTM: the carousel of 1997 (with a tanh block input)
    nfg = edits.fix_gate(get_cell("lstm"), "f")
    assert nfg.equation("C").expr.args[0] == nfg.state("C").prev
    assert "W_hf" not in {p.name for p in nfg.params}
    ident = edits.set_activation(get_cell("gru"), "n", lambda a: a)
    assert ident.equation("n").expr == ident.equation("n_bar").target


# ----- your own cell --------------------------------------------------------------------------------
def build_mgu():
    """Zhou et al. 2016, minimal gated unit, with the public API (README "Your own cell")."""
    b = CellBuilder("mgu", source="Zhou et al. 2016, 'Minimal gated unit for recurrent neural "
                    "networks', IJAC 13(3), eq. (8)")
    x, h = b.input("x"), b.state("h")
    f = b.let("f", sigmoid(b.param("W_xf", ("H", "I")) @ x + b.param("W_hf", ("H", "H")) @ h
                           + b.param("b_f", ("H",))))
    n = b.let("n", tanh(b.param("W_xn", ("H", "I")) @ x + b.param("W_hn", ("H", "H")) @ (f * h)
                        + b.param("b_n", ("H",))))
    b.let("h", (1 - f) * h + f * n)
    return b.build()


def test_your_own_cell_mgu_derives_and_computes_its_equation(monkeypatch):
    from lstmsym.cells import _REGISTRY
    mgu = build_mgu()
    monkeypatch.setitem(_REGISTRY, "mgu", mgu)    # register(), undone after the test
    register(mgu)
    assert "mgu" in cell_names() and get_cell("mgu") is mgu
    d = derive(mgu)
    assert set(d.params) == {"W_xf", "W_hf", "b_f", "W_xn", "W_hn", "b_n"}
    s = Step(mgu, {"I": 3, "H": 2})
    p, x, h = s.p, s.x, s.prev("h")
    f = sig(p("W_xf") * x + p("W_hf") * h + p("b_f"))
    n = th(p("W_xn") * x + p("W_hn") * had(f, h) + p("b_n"))
    assert _equal(s.new["h"], had(ones_like(f) - f, h) + had(f, n))


def test_list_verbose_shows_every_source(capsys):
    from lstmsym.cli import main
    assert main(["list", "--verbose"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert f"{name}:" in out
    assert "Hochreiter & Schmidhuber 1997" in out and "Greff" in out and "Cho et al. 2014" in out


def test_docstring_examples_run():
    import doctest

    import lstmsym.cells.edits
    import lstmsym.cells.spec
    for module in (lstmsym.cells.edits, lstmsym.cells.spec):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
