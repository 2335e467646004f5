"""lstmsym.interop.torch: torch layers <-> parameter dictionaries.

Independent checks: torch's own forward pass (a round trip must not change what the layer
computes) and the cell's equations evaluated by SymPy (``verification.scalar.forward_step``), so
the gate order and the bias mapping are checked against the cell definition, not against code
that shares the mapping.
"""
import subprocess
import sys

import numpy as np
import pytest
import sympy
import torch

from lstmsym import get_cell
from lstmsym.errors import LstmsymError
from lstmsym.interop.torch import (TORCH_CELLS, TorchInteropError, param_shapes,
                                   params_from_torch, params_to_torch)
from lstmsym.verification.scalar import ScalarEnv, forward_step

MODULES = {
    "lstm": lambda I, H, **kw: torch.nn.LSTM(I, H, **kw),
    "gru-torch": lambda I, H, **kw: torch.nn.GRU(I, H, **kw),
    "elman-tanh": lambda I, H, **kw: torch.nn.RNN(I, H, nonlinearity="tanh", **kw),
    "elman-relu": lambda I, H, **kw: torch.nn.RNN(I, H, nonlinearity="relu", **kw),
}


def make_module(cell_name, I=3, H=4, dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    module = MODULES[cell_name](I, H, dtype=dtype, **kw)
    with torch.no_grad():  # distinct, non-zero bias halves so a wrong split shows
        for name, p in module.named_parameters():
            if name.startswith("bias"):
                p.uniform_(-0.5, 0.5)
    return module


def run(module, x, state=None):
    with torch.no_grad():
        out, last = module(torch.from_numpy(x), state)
    return out.numpy(), last


@pytest.mark.parametrize("cell_name", TORCH_CELLS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_round_trip_module_params_module(cell_name, dtype):
    module = make_module(cell_name, dtype=dtype)
    name, params = params_from_torch(module)
    assert name == cell_name
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    assert list(params) == [p.name for p in get_cell(cell_name).params]
    assert {p: a.shape for p, a in params.items()} == param_shapes(cell_name, 3, 4)
    assert all(a.dtype == np_dtype for a in params.values())
    again = params_to_torch(cell_name, params)
    assert type(again) is type(module) and again.weight_ih_l0.dtype == dtype
    x = np.random.default_rng(1).standard_normal((5, 2, 3)).astype(np_dtype)
    out, last = run(module, x)
    out2, last2 = run(again, x)
    tol = 1e-13 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(out2, out, rtol=0, atol=tol)
    # weights are copied exactly; only the split of the bias between ih and hh changes
    assert torch.equal(again.weight_ih_l0, module.weight_ih_l0)
    assert torch.equal(again.weight_hh_l0, module.weight_hh_l0)


@pytest.mark.parametrize("cell_name", TORCH_CELLS)
def test_round_trip_params_module_params_is_exact(cell_name):
    rng = np.random.default_rng(2)
    params = {p: rng.standard_normal(s) for p, s in param_shapes(cell_name, 3, 4).items()}
    name, back = params_from_torch(params_to_torch(cell_name, params))
    assert name == cell_name and list(back) == list(params)
    for p in params:
        np.testing.assert_array_equal(back[p], params[p], err_msg=p)
    assert all(back[p] is not params[p] for p in params)


def test_params_are_copies_not_views():
    module = make_module("lstm")
    _, params = params_from_torch(module)
    before = params["W_xi"].copy()
    with torch.no_grad():
        module.weight_ih_l0.add_(1.0)
    np.testing.assert_array_equal(params["W_xi"], before)


def test_lstm_gate_order_and_bias_sum():
    """torch packs i, f, g, o; each lstmsym bias is bias_ih + bias_hh of its rows."""
    module = make_module("lstm", H=2)
    _, params = params_from_torch(module)
    w_ih = module.weight_ih_l0.detach().numpy()
    bias = (module.bias_ih_l0 + module.bias_hh_l0).detach().numpy()
    for k, g in enumerate("ifCo"):
        np.testing.assert_array_equal(params[f"W_x{g}"], w_ih[2 * k:2 * k + 2])
        np.testing.assert_array_equal(params[f"b_{g}"], bias[2 * k:2 * k + 2])


def test_gru_keeps_b_hn_apart():
    module = make_module("gru-torch", H=2)
    _, params = params_from_torch(module)
    np.testing.assert_array_equal(params["b_hn"], module.bias_hh_l0.detach().numpy()[4:])
    np.testing.assert_array_equal(params["b_xn"], module.bias_ih_l0.detach().numpy()[4:])
    again = params_to_torch("gru-torch", params)
    np.testing.assert_array_equal(again.bias_hh_l0.detach().numpy()[4:], params["b_hn"])
    np.testing.assert_array_equal(again.bias_hh_l0.detach().numpy()[:4], np.zeros(4))


@pytest.mark.parametrize("cell_name", ["lstm", "gru-torch", "elman-tanh"])
def test_module_without_bias_maps_to_zero_biases(cell_name):
    module = make_module(cell_name, bias=False)
    _, params = params_from_torch(module)
    for p, a in params.items():
        if p.startswith("b"):
            np.testing.assert_array_equal(a, np.zeros(4))
    x = np.random.default_rng(3).standard_normal((4, 2, 3))
    np.testing.assert_allclose(run(params_to_torch(cell_name, params), x)[0], run(module, x)[0],
                               rtol=0, atol=1e-14)


def _column(a):
    return sympy.Matrix(a.reshape(len(a), -1)).applyfunc(sympy.Float)


@pytest.mark.parametrize("cell_name", TORCH_CELLS)
def test_torch_layer_computes_the_cell_equations(cell_name):
    """params_to_torch(cell, p) run by torch == the registered cell's equations (SymPy) at p."""
    cell = get_cell(cell_name)
    module = make_module(cell_name, I=3, H=2, seed=4)
    _, params = params_from_torch(module)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 1, 3))
    state0 = {s.name: 0.5 * rng.standard_normal(2) for s in cell.states}
    env = ScalarEnv({"H": 2, "I": 3})
    for p in cell.params:
        env.values[p] = _column(params[p.name]) if params[p.name].ndim == 1 else \
            sympy.Matrix(params[p.name]).applyfunc(sympy.Float)
    for s in cell.states:
        env.values[s.at(-1)] = _column(state0[s.name])
    expected = []
    for t in range(2):
        env.values[cell.inputs[0].at(t)] = _column(x[t, 0])
        forward_step(cell, env, t)
        expected.append(np.array(env.values[cell.state("h").at(t)].evalf(30), dtype=float))
    expected = np.stack(expected)[:, :, 0]
    torch_state = tuple(torch.from_numpy(state0[s.name]).reshape(1, 1, 2) for s in cell.states)
    out, _ = run(params_to_torch(cell_name, params), x,
                 torch_state if len(torch_state) == 2 else torch_state[0])
    np.testing.assert_allclose(out[:, 0], expected, rtol=0, atol=1e-13)
    # params_from_torch of the original module (bias split in two) computes the same
    np.testing.assert_allclose(run(module, x, torch_state if len(torch_state) == 2
                                   else torch_state[0])[0][:, 0], expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("kwargs, words", [
    (dict(num_layers=2), "num_layers=2"),
    (dict(bidirectional=True), "bidirectional"),
    (dict(batch_first=True), "batch_first"),
    (dict(proj_size=2), "proj_size=2"),
])
def test_unsupported_configurations_are_named(kwargs, words):
    module = torch.nn.LSTM(3, 4, **kwargs)
    with pytest.raises(TorchInteropError, match=words):
        params_from_torch(module)


@pytest.mark.parametrize("module, words", [
    (lambda: torch.nn.LSTMCell(3, 4), "LSTMCell"),
    (lambda: torch.nn.Linear(3, 4), "Linear"),
    (lambda: torch.nn.GRU(3, 4, dtype=torch.float16), "float16"),
])
def test_unsupported_modules_are_named(module, words):
    with pytest.raises(TorchInteropError, match=words) as info:
        params_from_torch(module())
    assert isinstance(info.value, LstmsymError)


def test_params_to_torch_bad_input():
    good = {p: np.zeros(s) for p, s in param_shapes("lstm", 3, 4).items()}
    with pytest.raises(TorchInteropError, match="peephole-lstm"):
        params_to_torch("peephole-lstm", good)
    with pytest.raises(TorchInteropError, match="missing b_o"):
        params_to_torch("lstm", {p: a for p, a in good.items() if p != "b_o"})
    with pytest.raises(TorchInteropError, match="unexpected w_Cf"):
        params_to_torch("lstm", {**good, "w_Cf": np.zeros(4)})
    with pytest.raises(TorchInteropError, match=r"params\['W_hi'\] has shape \(4, 3\), "
                                                r"expected \(4, 4\)"):
        params_to_torch("lstm", {**good, "W_hi": np.zeros((4, 3))})
    with pytest.raises(TorchInteropError, match=r"params\['b_f'\] has dtype float32"):
        params_to_torch("lstm", {**good, "b_f": np.zeros(4, np.float32)})
    with pytest.raises(TorchInteropError, match="int64"):
        params_to_torch("lstm", {p: a.astype(np.int64) for p, a in good.items()})


def test_import_lstmsym_does_not_import_torch():
    code = ("import sys, lstmsym, lstmsym.interop.torch, lstmsym.verification.oracle; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
