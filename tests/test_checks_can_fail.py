"""The checks can fail: a wrong rule or a wrong formula is caught by the proof and by gradcheck.

A wrong Hadamard rule is put into the rules table (monkeypatch, so nothing else sees it); the
derivation, the proof and the generated kernel all read the table when called, and no kernel
is cached, so the wrong rule reaches the generated code. Both the symbolic proof and the
central-difference check of that kernel must report failures; with the right rule both pass.
"""
import dataclasses

import pytest

from lstmsym.cells import get_cell
from lstmsym.derive import derive
from lstmsym.expr import Had, had, terms, add
from lstmsym.rules import RULES
from lstmsym.verification.numeric import gradcheck
from lstmsym.verification.symbolic import formulas, prove, prove_derivation


def had_drops_a_factor(y, g):
    """y = a o b o ...: each child gets g times the other factors but the last one."""
    out = []
    for i, a in enumerate(y.args):
        others = [b for j, b in enumerate(y.args) if j != i]
        out.append((a, had(g, *others[:-1])))
    return out


def had_drops_a_term(y, g):
    """y = a o b: the last factor gets no gradient at all."""
    return [(a, had(g, *(b for j, b in enumerate(y.args) if j != i)))
            for i, a in enumerate(y.args[:-1])]


WRONG_RULES = {"drops a factor": had_drops_a_factor, "drops a term": had_drops_a_term}
CELL = "lstm"
CONFIGS = ((3, 2, 2, 3),)           # (T, B, I, H): one small case is enough to see it


def test_right_rule_passes_both_checks():
    assert all(v.ok for v in prove(CELL, hidden_sizes=(2,)))
    assert all(v.ok for v in gradcheck(CELL, seed=0, configs=CONFIGS, truncations=(None,)))


@pytest.mark.parametrize("wrong", list(WRONG_RULES))
def test_wrong_hadamard_rule_fails_the_proof(monkeypatch, wrong):
    monkeypatch.setitem(RULES, Had, WRONG_RULES[wrong])
    verdicts = prove(CELL, hidden_sizes=(2,))
    failed = [v for v in verdicts if not v.ok]
    assert failed, "the proof did not notice a wrong Hadamard rule"
    # the cell state's gradient flows through f o C_{t-1}, i o C~ and o o tanh(C): all wrong
    assert any(v.name.startswith(("grad f[t]", "grad i[t]", "grad C_tilde[t]", "grad o[t]",
                                  "grad C[t]", "carry C"))
               for v in failed)
    assert all("max |difference|" in v.detail for v in failed)
    assert all(float(v.detail.rsplit("=", 1)[1]) > 1e-3 for v in failed)


@pytest.mark.parametrize("wrong", list(WRONG_RULES))
def test_wrong_hadamard_rule_fails_the_gradcheck(monkeypatch, wrong):
    monkeypatch.setitem(RULES, Had, WRONG_RULES[wrong])
    verdicts = gradcheck(CELL, seed=0, configs=CONFIGS, truncations=(None,))
    assert verdicts and not any(v.ok for v in verdicts), \
        "the generated kernel's gradient check did not notice a wrong Hadamard rule"


def _formula(d, label):
    return next(item for item in formulas(d) if item[0] == label)


def test_formula_missing_a_term_fails_with_a_difference():
    d = derive(get_cell("peephole-lstm"))
    label, kind, key, expr = _formula(d, "grad C[t]")
    # drop the term through f_{t+1} (nabla_{C_{t+1}} Div o f_{t+1}), the constant error carousel
    kept = [t for t in terms(expr) if "f[t+1]" not in repr(t)]
    assert len(kept) == len(terms(expr)) - 1
    wrong = add(*kept)
    right, bad = prove_derivation(d, (2,), items=[(label, kind, key, expr),
                                                  (label + " (wrong)", kind, key, wrong)])
    assert right.ok and right.method == "exact"
    assert not bad.ok and float(bad.detail.rsplit("=", 1)[1]) > 1e-3


def test_formula_with_a_wrong_factor_fails():
    """o_{t+1} where i_{t+1} belongs, in nabla_{C_t} Div: a mistake students make."""
    from lstmsym.expr import Sym, substitute
    d = derive(get_cell("peephole-lstm"))
    label, kind, key, expr = _formula(d, "grad C_tilde[t]")
    i_t = Sym("i", "var", ("H",), 0)
    wrong = substitute(expr, {i_t: Sym("o", "var", ("H",), 0)})
    assert wrong != expr
    (bad,) = prove_derivation(d, (2,), items=[(label, kind, key, wrong)])
    assert not bad.ok


def test_truncated_formulas_are_not_the_exact_gradient():
    """The 1997 rule proven against the exact gradient fails exactly where it drops paths."""
    d = derive(get_cell("lstm"), truncation="1997")
    exact_truth = dataclasses.replace(d, truncation=None)
    verdicts = {v.name: v for v in prove_derivation(exact_truth, (2,))}
    assert not verdicts["carry h[t-1]"].ok
    assert not verdicts["grad h[t]"].ok
    assert verdicts["grad C_tilde_bar[t]"].ok       # local to step t: the same in both
    assert all(v.ok for v in prove_derivation(d, (2,)))
