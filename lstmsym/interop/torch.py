"""PyTorch interop: ``torch.nn.RNN``/``LSTM``/``GRU`` modules <-> lstmsym parameter dictionaries.

The generated kernels (``lstmsym codegen``) take a dictionary of parameters named as in the
cell (column-vector convention, W is (out, in)); PyTorch packs the gates of a layer into two
matrices ``weight_ih_l0`` (G*H, I) and ``weight_hh_l0`` (G*H, H) and two bias vectors
``bias_ih_l0``, ``bias_hh_l0`` (G*H). The mapping, from the equations in the PyTorch docs:

=========  ===================  ==========================================================
module     lstmsym cell         packing (rows of weight_ih / weight_hh / the biases)
=========  ===================  ==========================================================
nn.RNN     elman-tanh / -relu   W = weight_ih, U = weight_hh, b = bias_ih + bias_hh
nn.LSTM    lstm                 gates i, f, g (= C_tilde), o; b_<g> = bias_ih + bias_hh
nn.GRU     gru-torch            gates r, z, n; b_r, b_z = bias_ih + bias_hh;
                                b_xn = bias_ih (n rows), b_hn = bias_hh (n rows), kept
                                apart because torch applies r to (W_hn h + b_hn)
=========  ===================  ==========================================================

The kernels have one bias per gate where torch has two that only ever appear as a sum, so
``params_from_torch`` adds them and ``params_to_torch`` puts the whole bias in ``bias_ih_l0``
and zeros in ``bias_hh_l0`` (except GRU's b_hn, which goes to the n rows of ``bias_hh_l0``).
Both directions compute the same function; the round trip module -> params -> module gives
the same outputs but not the same split of the biases.

Supported: one layer, unidirectional, ``batch_first=False``, no ``proj_size``, float32 or
float64. A module without biases maps to zero biases. Anything else raises
``TorchInteropError`` naming what is unsupported. torch is imported inside the functions only,
so ``import lstmsym`` (and this module) never imports it.

>>> import torch
>>> from lstmsym.interop.torch import params_from_torch, params_to_torch
>>> _ = torch.manual_seed(0)
>>> name, params = params_from_torch(torch.nn.GRU(3, 2, dtype=torch.float64))
>>> name, list(params)[:3], params["W_xr"].shape
('gru-torch', ['W_xr', 'W_hr', 'b_r'], (2, 3))
>>> type(params_to_torch(name, params)).__name__
'GRU'
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmsym.cells import get_cell
from lstmsym.errors import LstmsymError


class TorchInteropError(LstmsymError, ValueError):
    """A torch module or parameter dictionary that the interop cannot map."""


@dataclass(frozen=True)
class Layout:
    """How one cell's parameters pack into a torch layer.

    ``slots`` lists torch's gate blocks in torch's order; each is (input weight, recurrent
    weight, bias) in lstmsym names, where the bias is one name (the sum bias_ih + bias_hh) or a
    pair (bias_ih part, bias_hh part). ``order`` is the cell's parameter order.
    """

    module: str
    nonlinearity: str | None
    slots: tuple
    order: tuple


def _layout(cell_name: str, module: str, nonlinearity: str | None, slots: tuple) -> Layout:
    """A Layout whose ``order`` is read from the registered cell (not written out again)."""
    return Layout(module, nonlinearity, slots, tuple(p.name for p in get_cell(cell_name).params))


LAYOUTS = {
    "lstm": _layout(
        "lstm", "LSTM", None,
        (("W_xi", "W_hi", "b_i"), ("W_xf", "W_hf", "b_f"),
         ("W_xC", "W_hC", "b_C"), ("W_xo", "W_ho", "b_o"))),
    "gru-torch": _layout(
        "gru-torch", "GRU", None,
        (("W_xr", "W_hr", "b_r"), ("W_xz", "W_hz", "b_z"), ("W_xn", "W_hn", ("b_xn", "b_hn")))),
    "elman-tanh": _layout("elman-tanh", "RNN", "tanh", (("W", "U", "b"),)),
    "elman-relu": _layout("elman-relu", "RNN", "relu", (("W", "U", "b"),)),
}

TORCH_CELLS = tuple(LAYOUTS)


def layout(cell_name: str) -> Layout:
    """The packing of ``cell_name``; a ``TorchInteropError`` for cells torch does not have."""
    if cell_name not in LAYOUTS:
        raise TorchInteropError(
            f"cell {cell_name!r} has no PyTorch counterpart; the interop maps "
            + ", ".join(TORCH_CELLS))
    return LAYOUTS[cell_name]


def param_shapes(cell_name: str, input_size: int, hidden_size: int) -> dict:
    """name -> shape of every parameter of ``cell_name`` (W is (out, in), biases (H,))."""
    shapes = {}
    for w_x, w_h, bias in layout(cell_name).slots:
        shapes[w_x] = (hidden_size, input_size)
        shapes[w_h] = (hidden_size, hidden_size)
        for b in (bias if isinstance(bias, tuple) else (bias,)):
            shapes[b] = (hidden_size,)
    return {name: shapes[name] for name in layout(cell_name).order}


# --- module -> params ----------------------------------------------------------------------

def cell_name_of(module) -> str:
    """The lstmsym cell a torch module computes, after checking it is one we can map."""
    import torch

    if isinstance(module, torch.nn.LSTM):
        name = "lstm"
    elif isinstance(module, torch.nn.GRU):
        name = "gru-torch"
    elif isinstance(module, torch.nn.RNN):
        if module.nonlinearity not in ("tanh", "relu"):
            raise TorchInteropError(f"nn.RNN nonlinearity {module.nonlinearity!r} is not "
                                    "supported (tanh or relu)")
        name = f"elman-{module.nonlinearity}"
    else:
        raise TorchInteropError(f"unsupported module type {type(module).__name__}: the interop "
                                "maps torch.nn.RNN, torch.nn.LSTM and torch.nn.GRU")
    kind = type(module).__name__
    unsupported = []
    if module.num_layers != 1:
        unsupported.append(f"num_layers={module.num_layers} (only 1)")
    if module.bidirectional:
        unsupported.append("bidirectional=True")
    if getattr(module, "proj_size", 0):
        unsupported.append(f"proj_size={module.proj_size}")
    if module.batch_first:
        unsupported.append("batch_first=True (x is (T, B, I))")
    if unsupported:
        raise TorchInteropError(f"unsupported {kind} configuration: " + ", ".join(unsupported))
    dtype = module.weight_ih_l0.dtype
    if dtype not in (torch.float32, torch.float64):
        raise TorchInteropError(f"unsupported {kind} dtype {dtype} (float32 or float64)")
    return name


def params_from_torch(module) -> tuple:
    """The cell name and parameter dictionary of a torch recurrent layer.

    Arguments:
        module: ``torch.nn.RNN`` (tanh or relu), ``torch.nn.LSTM`` or ``torch.nn.GRU`` with one
            layer, one direction, ``batch_first=False`` and no ``proj_size``.

    Returns:
        ``(cell_name, params)``: params maps each parameter name (in the cell's order) to a
        fresh numpy array of the module's dtype, W as (H, I) or (H, H), biases as (H,).
    """
    name = cell_name_of(module)
    lay = LAYOUTS[name]
    H = module.hidden_size
    w_ih = _numpy(module.weight_ih_l0)
    w_hh = _numpy(module.weight_hh_l0)
    if module.bias:
        b_ih, b_hh = _numpy(module.bias_ih_l0), _numpy(module.bias_hh_l0)
    else:
        b_ih = b_hh = np.zeros(w_ih.shape[0], dtype=w_ih.dtype)
    params = {}
    for k, (w_x, w_h, bias) in enumerate(lay.slots):
        rows = slice(k * H, (k + 1) * H)
        params[w_x] = w_ih[rows].copy()
        params[w_h] = w_hh[rows].copy()
        if isinstance(bias, tuple):
            params[bias[0]] = b_ih[rows].copy()
            params[bias[1]] = b_hh[rows].copy()
        else:
            params[bias] = b_ih[rows] + b_hh[rows]
    return name, {p: params[p] for p in lay.order}


def _numpy(tensor) -> np.ndarray:
    return np.array(tensor.detach().cpu().numpy(), copy=True)


# --- params -> module ----------------------------------------------------------------------

def check_params(cell_name: str, params: dict) -> tuple:
    """(input_size, hidden_size, dtype) of a parameter dictionary, after checking keys, shapes
    and dtypes; a ``TorchInteropError`` naming the offending array otherwise."""
    lay = layout(cell_name)
    if not isinstance(params, dict):
        raise TorchInteropError(f"params must be a dict of arrays, not {type(params).__name__}")
    missing = [p for p in lay.order if p not in params]
    extra = sorted(str(p) for p in params if p not in lay.order)
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else [])
        raise TorchInteropError(f"params for {cell_name!r}: {'; '.join(parts)} (expected "
                                + ", ".join(lay.order) + ")")
    w_x, w_h, _ = lay.slots[0]
    for p in (w_x, w_h):
        if np.ndim(params[p]) != 2:
            raise TorchInteropError(f"params[{p!r}] has shape {np.shape(params[p])}, "
                                    "expected a matrix")
    H, I = np.shape(params[w_x])
    dtype = np.asarray(params[w_x]).dtype
    if dtype not in (np.float32, np.float64):
        raise TorchInteropError(f"params[{w_x!r}] has dtype {dtype}; use float32 or float64")
    for p, shape in param_shapes(cell_name, I, H).items():
        arr = params[p]
        if not isinstance(arr, np.ndarray):
            raise TorchInteropError(f"params[{p!r}] is {type(arr).__name__}, not a numpy array")
        if arr.shape != shape:
            raise TorchInteropError(f"params[{p!r}] has shape {arr.shape}, expected {shape} "
                                    f"(H={H}, I={I})")
        if arr.dtype != dtype:
            raise TorchInteropError(f"params[{p!r}] has dtype {arr.dtype}, expected {dtype} "
                                    f"like params[{w_x!r}]")
    return I, H, dtype


def packed(cell_name: str, params: dict, cat, zeros) -> dict:
    """torch's four layer tensors built from lstmsym parameters with ``cat`` (concatenate along
    axis 0) and ``zeros(like)``: works on numpy arrays and on torch tensors (the PyTorch oracle
    packs leaf tensors this way so autograd reports gradients in lstmsym names)."""
    w_ih, w_hh, b_ih, b_hh = [], [], [], []
    for w_x, w_h, bias in layout(cell_name).slots:
        w_ih.append(params[w_x])
        w_hh.append(params[w_h])
        if isinstance(bias, tuple):
            b_ih.append(params[bias[0]])
            b_hh.append(params[bias[1]])
        else:
            b_ih.append(params[bias])
            b_hh.append(zeros(params[bias]))
    return {"weight_ih_l0": cat(w_ih), "weight_hh_l0": cat(w_hh),
            "bias_ih_l0": cat(b_ih), "bias_hh_l0": cat(b_hh)}


def empty_module(cell_name: str, input_size: int, hidden_size: int, dtype=np.float64):
    """A torch layer of the right class, sizes and dtype, with torch's default initial values."""
    import torch

    lay = layout(cell_name)
    tdtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
    kwargs = dict(num_layers=1, bias=True, batch_first=False, bidirectional=False, dtype=tdtype)
    if lay.module == "RNN":
        return torch.nn.RNN(input_size, hidden_size, nonlinearity=lay.nonlinearity, **kwargs)
    return getattr(torch.nn, lay.module)(input_size, hidden_size, **kwargs)


def params_to_torch(cell_name: str, params: dict):
    """A torch layer computing ``cell_name`` with ``params`` (the inverse of params_from_torch).

    Arguments:
        cell_name: ``"lstm"``, ``"gru-torch"``, ``"elman-tanh"`` or ``"elman-relu"``.
        params: name -> numpy array, all float32 or all float64, shapes as in the cell.

    Returns:
        ``torch.nn.LSTM``/``GRU``/``RNN`` (one layer, ``batch_first=False``) of the params'
        dtype; the bias of each gate sits in ``bias_ih_l0``, ``bias_hh_l0`` holds zeros except
        GRU's b_hn.
    """
    import torch

    I, H, dtype = check_params(cell_name, params)
    module = empty_module(cell_name, I, H, dtype)
    tensors = packed(cell_name, params, np.concatenate, np.zeros_like)
    with torch.no_grad():
        for attr, value in tensors.items():
            getattr(module, attr).copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return module


__all__ = ["TorchInteropError", "Layout", "LAYOUTS", "TORCH_CELLS", "layout", "param_shapes",
           "cell_name_of", "params_from_torch", "check_params", "packed", "empty_module",
           "params_to_torch"]
