"""Structure of the one-step derivation (values are proven in test_symbolic.py)."""
import pytest

from lstmsym.cells import get_cell
from lstmsym.derive import derive
from lstmsym.errors import LstmsymError
from lstmsym.expr import ActDeriv, Grad, OutGrad


def _grads_in(expr):
    return {n for n in expr.walk() if isinstance(n, (Grad, OutGrad))}


def test_peephole_state_gradient_reaches_into_step_t_plus_1():
    d = derive(get_cell("peephole-lstm"))
    refs = {(g.of.name, g.of.time) for g in _grads_in(d.grad("C"))}
    # through f_{t+1} (the carousel) and the input/forget peepholes at t+1
    assert {("C", 1), ("f_bar", 1), ("i_bar", 1), ("h", 0), ("o_bar", 0)} <= refs


def test_closed_form_leaves_only_state_gradients():
    d = derive(get_cell("peephole-lstm"))
    for state in ("h", "C"):
        names = {g.of.name for g in _grads_in(d.closed_form(state))}
        assert names <= {"h", "C"}


def test_truncation_1997_drops_everything_back_through_h_prev():
    exact, trunc = derive(get_cell("lstm")), derive(get_cell("lstm"), truncation="1997")
    assert len(exact.carry["h"]) == 4 and trunc.carry["h"] == []
    # the carousel still carries error back: C_{t-1} gets f_t o dC_t
    assert trunc.carry["C"] == exact.carry["C"]


def test_derivation_has_no_sizes():
    d = derive(get_cell("peephole-lstm"))
    dims = {dim for v in d.grads for t in d.grads[v] for n in t.expr.walk()
            for dim in getattr(n, "shape", ())}
    assert dims <= {"H", "I"}
    assert any(isinstance(n, ActDeriv) for n in d.grad("f_bar").walk())


def test_unknown_truncation_is_a_clear_error():
    with pytest.raises(LstmsymError, match="unknown truncation"):
        derive(get_cell("lstm"), truncation="k2")


def test_docstring_examples_run():
    import doctest
    from importlib import import_module

    # import_module: the attribute lstmsym.derive is the function, not the module
    for name in ("lstmsym.derive", "lstmsym.naming", "lstmsym.schedule"):
        module = import_module(name)
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
