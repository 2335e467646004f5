"""A quick timing of a generated kernel against PyTorch on the same problem (notebook 06).

One forward + full-BPTT backward of the loss <dh, h> over all steps, for the generated kernel
(lstmsym.codegen) and for torch's own layer with the same parameters
(lstmsym.interop.torch.params_to_torch); the median of a few runs after a warm-up. This is a
quick look for a notebook; benchmarks/bench_kernels.py is the careful measurement (thread
limits, interleaving, the GEMM floor, memory).
"""
from __future__ import annotations

import statistics
import time

import numpy as np


def _median_time(fn, repeats: int) -> float:
    fn()                                   # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_against_torch(cell: str, batch: int = 16, input_size: int = 64,
                       hidden_size: int = 64, steps: int = 50, repeats: int = 3,
                       seed: int = 0) -> dict:
    """Seconds for one forward + backward: {"kernel": s, "torch": s, "ratio": kernel/torch}.

    ``cell`` is one PyTorch has: ``lstm``, ``gru-torch``, ``elman-tanh``, ``elman-relu``.
    """
    import torch

    from lstmsym.codegen import load_kernel
    from lstmsym.interop.torch import params_to_torch

    kernel = load_kernel(cell)
    params = kernel.init_params(input_size, hidden_size, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, batch, input_size))
    dh = rng.standard_normal((steps, batch, hidden_size))
    module = params_to_torch(cell, params)
    x_t, dh_t = torch.from_numpy(x), torch.from_numpy(dh)

    def run_kernel():
        _, cache = kernel.forward(params, x)
        kernel.backward(params, cache, {"h": dh})

    def run_torch():
        module.zero_grad()
        xs = x_t.clone().requires_grad_(True)
        out, _ = module(xs)
        out.backward(dh_t)

    k, t = _median_time(run_kernel, repeats), _median_time(run_torch, repeats)
    return {"cell": cell, "kernel": k, "torch": t, "ratio": k / t}
