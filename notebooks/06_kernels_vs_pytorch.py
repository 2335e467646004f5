# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Generated kernels against PyTorch
#
# `lstmsym codegen CELL` prints a standalone NumPy module (forward and BPTT backward, full or
# truncated) from the derived equations. Here its gradients are compared with PyTorch
# autograd on the same parameters, and its speed with torch's own layer.

# %%
from IPython.display import Markdown, display

from lstmsym.analysis.timing import time_against_torch
from lstmsym.codegen import generate_kernel, load_kernel
from lstmsym.verification.oracle import compare_kernel, random_problem

source = generate_kernel("lstm")
backward = source[source.index("def backward"):]
loop = backward[backward.index("    for t in"):]
display(Markdown("The time loop of the generated LSTM backward pass (first 40 lines):\n\n"
                 "```python\n" + "\n".join(loop.splitlines()[:40]) + "\n```"))

# %% [markdown]
# **Gradients.** Every output, parameter gradient, input gradient and initial-state gradient
# of the kernel against torch autograd (float64), with full BPTT and with truncation every
# 5 steps; the number is the largest relative error.

# %%
for cell in ("lstm", "gru-torch", "elman-tanh", "elman-relu"):
    problem = random_problem(cell, input_size=3, hidden_size=5, steps=12, batch=2, seed=1,
                             with_c_outputs=False)
    kernel = load_kernel(cell)
    for truncate in (None, 5):
        errors = compare_kernel(kernel, cell, truncate=truncate, **problem)
        worst = max(errors, key=errors.get)
        print(f"{cell:10s} truncate={str(truncate):4s}  {len(errors)} quantities, "
              f"largest relative error {errors[worst]:.1e} ({worst})")

# %% [markdown]
# **Speed** of one forward + backward at a small size (batch 16, input and hidden 64,
# 50 steps), float64. A quick look; `benchmarks/bench_kernels.py` measures carefully.

# %%
for cell in ("lstm", "gru-torch"):
    t = time_against_torch(cell)
    print(f"{cell:10s} kernel {1e3 * t['kernel']:6.1f} ms   torch {1e3 * t['torch']:6.1f} ms   "
          f"ratio {t['ratio']:.2f}")
