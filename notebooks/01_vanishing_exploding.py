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
# # 01 · Vanishing and exploding gradients
#
# The lecture's argument for why recurrent nets forget, measured with `lstmsym.analysis`
# (the same numbers and figures as `lstmsym analyze linear|saturation|jacobians|errorflow`).
#
# **1. The linear recursion** $h(t) = W h(t-1) + C x(t)$. One input at $t = 0$ gives
# $h(t) = W^t C x(0)$: its length grows or shrinks like $|\lambda_{\max}|^t$.

# %%
from lstmsym.analysis import (check_error_flow, jacobian_chain, linear_response,
                              saturation_sweep)
from lstmsym.analysis import plotting
from lstmsym.analysis.recursion import demo_matrices

responses = [linear_response(W, steps=60, label=label) for label, W in demo_matrices(8)]
for r in responses:
    print(f"{r.label}: lambda_max = {r.rho:.3f}, measured growth rate = {r.growth_rate:.4f}")
fig = plotting.plot_linear(responses)

# %% [markdown]
# **2. Nonlinear recursions** $h(t) = f(w\,h(t-1) + x(t))$. Sigmoid saturates within a few
# steps whatever $w$ is; tanh remembers longest near $|w| = 1$; ReLU blows up for $w > 1$.
# *Memory* is the number of steps for which $|\partial h(t)/\partial x(0)|$ stays above 1% of
# its first value.

# %%
sweep = saturation_sweep(steps=50)
for act, runs in sweep.items():
    best = max((r for r in runs if r.blowup_step is None), key=lambda r: r.memory)
    blown = sum(r.blowup_step is not None for r in runs)
    print(f"{act:8s} longest memory {best.memory:3d} steps (w = {best.w:g}); "
          f"{blown} of {len(runs)} weights blow up")
fig = plotting.plot_saturation(sweep)

# %% [markdown]
# **3. The Jacobian chain.** The gradient reaching $h_{t-k}$ is multiplied by
# $\partial h_t/\partial h_{t-k}$, a product of $k$ per-step Jacobians
# $\mathrm{diag}(f'(z))\,U$, here read off the *derived* backward step of each cell. Against
# it, the LSTM's cell state: its own path $\partial C_t/\partial C_{t-k}$ is the product of
# the forget gates (`lstm`) and exactly 1 for the 1997 LSTM (the constant error carousel).

# %%
chains = [jacobian_chain(c, k_max=50, of="C" if c.startswith("lstm") else "h", radius=1.0)
          for c in ("elman-tanh", "elman-sigmoid", "elman-relu", "lstm", "lstm1997")]
for c in chains:
    cec = f", CEC path {c.cec_norms[-1]:.3g}" if c.cec_norms else ""
    print(f"{c.cell:14s} ||d{c.of}_T/d{c.of}_(T-50)|| = {c.norms[-1]:.3g}{cec}")
fig = plotting.plot_jacobians(chains)

# %% [markdown]
# **4. Hochreiter's error flow** (1997, Sec. 3.1): the error reaching unit $v$ $q$ steps back
# is a sum over all paths of products $f'_{l_m}(\mathrm{net}_{l_m})\,w$. Summed path by path it
# equals BPTT to rounding; each factor $|f' w| < 1$ makes it vanish, $> 1$ makes it explode.

# %%
flow = check_error_flow(units=3, max_q=6, lags=40)
print(f"max |path sum - BPTT| over q = 1..6 and all unit pairs: {flow.max_abs_diff:.1e}")
fig = plotting.plot_errorflow(flow)
