"""The PyTorch oracle: torch autograd on the same parameters as a generated kernel.

For the cells PyTorch has (``lstm``, ``gru-torch``, ``elman-tanh``, ``elman-relu``; the mapping
is ``lstmsym.interop.torch``), ``torch_gradients`` runs torch's own ``nn.LSTM``/``GRU``/``RNN``
forward in the parameters' dtype and differentiates the loss the kernel contract implies,

    L = sum_t sum_s <d_outputs[s]_t, s_t> + sum_s <d_final[s], s_T>,

with torch autograd. The parameters enter as leaf tensors named as in the cell and packed into
torch's layout with ``torch.cat`` (``lstmsym.interop.torch.packed``), so autograd reports the
gradients under lstmsym's names; nothing of the kernel's backward pass is used.

Truncated BPTT with k1 = k2 = k (``lstmsym.schedule``) is, by definition, a forward pass whose
state is detached at the start of every chunk [k, 2k), [2k, 3k), ...; the oracle runs exactly
that. Per-step cell states (``d_outputs["C"]``) need the module stepped one step at a time,
which the oracle then does (torch's layers only return h at every step).

``compare_kernel`` runs a kernel's forward and backward on the same problem and returns the
relative error of every output and gradient against the oracle:

    rel_error(a, ref) = max|a - ref| / max|ref|     (max|a - ref| where ref is all zeros)

torch is imported inside the functions, never by ``import lstmsym``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmsym.interop.torch import (TorchInteropError, check_params, empty_module, layout,
                                   packed, params_from_torch)
from lstmsym.schedule import parse_truncate


@dataclass
class OracleResult:
    """What torch autograd computed.

    Attributes:
        outputs: state name -> (T, B, H) sequence (``"C"`` only when stepped per step).
        final: state name -> (B, H) state after the last step.
        d_params: parameter name -> gradient (shape of the parameter).
        d_x: (T, B, I) gradient of the input.
        d_state0: state name -> (B, H) gradient of the initial state.
    """

    outputs: dict
    final: dict
    d_params: dict
    d_x: np.ndarray
    d_state0: dict


def state_names(cell_name: str) -> tuple:
    """The carried states of a torch cell, in the kernel contract's names."""
    return ("h", "C") if layout(cell_name).module == "LSTM" else ("h",)


def torch_gradients(cell_name: str, params: dict, x, state0=None, d_outputs=None,
                    d_final=None, truncate=None, stepwise=None) -> OracleResult:
    """Forward and backward of torch's layer for ``cell_name`` (see the module docstring).

    Arguments:
        cell_name: a cell of ``lstmsym.interop.torch.TORCH_CELLS``.
        params: name -> numpy array (float32 or float64; torch runs in that dtype).
        x: (T, B, I) input. state0: state name -> (B, H), zeros where missing.
        d_outputs: state name -> (T, B, H); d_final: state name -> (B, H) (missing = zeros).
        truncate: None (full BPTT), k or (k, k): detach the state every k steps.
        stepwise: step the layer one step at a time (forced when ``d_outputs`` has ``"C"``).

    Returns:
        an ``OracleResult`` of numpy arrays in the params' dtype.
    """
    import torch

    I, H, dtype = check_params(cell_name, params)
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != I:
        raise TorchInteropError(f"x has shape {x.shape}, expected (T, B, {I})")
    T, B, _ = x.shape
    names = state_names(cell_name)
    d_outputs = dict(d_outputs or {})
    d_final = dict(d_final or {})
    for key in list(d_outputs) + list(d_final) + list(state0 or {}):
        if key not in names:
            raise TorchInteropError(f"{cell_name!r} has no state {key!r} (states: "
                                    + ", ".join(names) + ")")
    window = _chunk_length(truncate, T)
    if stepwise is None:
        stepwise = "C" in d_outputs

    def tensor(a, grad=False):
        return torch.tensor(np.asarray(a, dtype=dtype), requires_grad=grad)

    leaves = {p: tensor(v, grad=True) for p, v in params.items()}
    x_t = tensor(x, grad=True)
    s0 = {s: tensor((state0 or {}).get(s, np.zeros((B, H))), grad=True) for s in names}
    module = empty_module(cell_name, I, H, dtype)
    weights = packed(cell_name, leaves, torch.cat, torch.zeros_like)

    def run(xs, state):
        packed_state = tuple(state[s].unsqueeze(0) for s in names)
        arg = packed_state if len(names) == 2 else packed_state[0]
        out, last = torch.func.functional_call(module, weights, (xs, arg))
        last = last if isinstance(last, tuple) else (last,)
        return out, {s: v.squeeze(0) for s, v in zip(names, last)}

    state, seqs = dict(s0), {s: [] for s in names}
    for t0 in range(0, T, window):
        if t0 > 0:
            state = {s: v.detach() for s, v in state.items()}
        if stepwise:
            for t in range(t0, min(t0 + window, T)):
                _, state = run(x_t[t:t + 1], state)
                for s in names:
                    seqs[s].append(state[s].unsqueeze(0))
        else:
            out, state = run(x_t[t0:t0 + window], state)
            seqs["h"].append(out)
    outputs = {s: torch.cat(v) for s, v in seqs.items() if v}

    loss = x_t.new_zeros(())
    for s, d in d_outputs.items():
        loss = loss + (tensor(d) * outputs[s]).sum()
    for s, d in d_final.items():
        loss = loss + (tensor(d) * state[s]).sum()
    wrt = list(leaves.values()) + [x_t] + [s0[s] for s in names]
    grads = torch.autograd.grad(loss, wrt, allow_unused=True) if loss.requires_grad else (
        [None] * len(wrt))
    grads = [np.zeros(w.shape, dtype=dtype) if g is None else g.detach().numpy()
             for g, w in zip(grads, wrt)]
    n = len(leaves)
    return OracleResult(
        outputs={s: v.detach().numpy() for s, v in outputs.items()},
        final={s: v.detach().numpy() for s, v in state.items()},
        d_params=dict(zip(leaves, grads[:n])),
        d_x=grads[n],
        d_state0=dict(zip(names, grads[n + 1:])))


def _chunk_length(truncate, T: int) -> int:
    """k of a truncation the oracle can run as detached chunks (k1 = k2), T for full BPTT."""
    parsed = parse_truncate(truncate, T)
    if parsed is None:
        return max(T, 1)
    if parsed == "1997" or parsed[0] != parsed[1]:
        raise TorchInteropError(f"truncation {truncate!r}: the PyTorch oracle runs full BPTT "
                                "or truncation every k steps (k1 = k2) only")
    return parsed[0]


def rel_error(a, ref) -> float:
    """max|a - ref| / max|ref| (the absolute error where ref is all zeros), in float64."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if a.shape != ref.shape:
        raise ValueError(f"shapes differ: {a.shape} vs reference {ref.shape}")
    diff = float(np.max(np.abs(a - ref))) if a.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def compare_kernel(kernel, cell_name: str, params: dict, x, state0=None, d_outputs=None,
                   d_final=None, truncate=None, reference: OracleResult | None = None) -> dict:
    """Relative errors of a generated kernel against torch autograd on the same problem.

    Arguments:
        kernel: a module following the kernel contract (``forward``, ``backward``).
        cell_name, params, x, state0, d_outputs, d_final, truncate: as in ``torch_gradients``;
            the kernel runs in the dtype of ``params`` and ``x``.
        reference: an ``OracleResult`` to compare with instead of running torch in the
            params' dtype (e.g. a float64 result for a float32 kernel).

    Returns:
        quantity -> relative error, quantities named ``out:h``, ``final:C``, ``d:W_xf``,
        ``d:x``, ``d_state0:h`` … covering every output, parameter, input and initial state.
    """
    if reference is None:
        reference = torch_gradients(cell_name, params, x, state0, d_outputs, d_final, truncate)
    outputs, cache = kernel.forward(params, x, state0)
    d_params, d_x, d_state0 = kernel.backward(params, cache, d_outputs or {}, d_final,
                                              truncate=truncate)
    errors = {}
    for s, ref in reference.outputs.items():
        errors[f"out:{s}"] = rel_error(outputs[s], ref)
    for s, ref in reference.final.items():
        errors[f"final:{s}"] = rel_error(outputs[s][-1], ref)
    missing = set(reference.d_params) ^ set(d_params)
    if missing:
        raise AssertionError(f"kernel d_params keys differ from the parameters: {sorted(missing)}")
    for p, ref in reference.d_params.items():
        errors[f"d:{p}"] = rel_error(d_params[p], ref)
    errors["d:x"] = rel_error(d_x, reference.d_x)
    for s, ref in reference.d_state0.items():
        errors[f"d_state0:{s}"] = rel_error(d_state0[s], ref)
    return errors


def random_problem(cell_name: str, input_size: int, hidden_size: int, steps: int, batch: int,
                   seed: int = 0, scale: float = 1.0, with_c_outputs: bool = True) -> dict:
    """A float64 test problem: torch's default-initialised layer (``torch.manual_seed(seed)``)
    with non-zero biases, and random x, initial states and upstream gradients.

    Returns:
        dict with ``params``, ``x``, ``state0``, ``d_outputs``, ``d_final`` (numpy float64);
        ``d_outputs`` has ``"C"`` too for the LSTM when ``with_c_outputs``.
    """
    import torch

    torch.manual_seed(seed)
    lay = layout(cell_name)
    kwargs = dict(dtype=torch.float64)
    if lay.module == "RNN":
        kwargs["nonlinearity"] = lay.nonlinearity
    module = getattr(torch.nn, lay.module)(input_size, hidden_size, **kwargs)
    _, params = params_from_torch(module)

    def draw(*shape):
        return scale * torch.randn(*shape, dtype=torch.float64).numpy()

    names = state_names(cell_name)
    T, B, H = steps, batch, hidden_size
    d_out_names = names if with_c_outputs else ("h",)
    return dict(params=params, x=draw(T, B, input_size),
                state0={s: 0.5 * draw(B, H) for s in names},
                d_outputs={s: draw(T, B, H) for s in d_out_names},
                d_final={s: draw(B, H) for s in names})


__all__ = ["OracleResult", "state_names", "torch_gradients", "rel_error", "compare_kernel",
           "random_problem"]
