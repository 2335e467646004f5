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
# # 03 · The 1997 LSTM, the constant error carousel and its truncated gradient
#
# Hochreiter & Schmidhuber (1997): a memory cell $s_c(t) = s_c(t-1) + y^{in}(t)\,g(net_c(t))$
# whose self-connection has weight 1 and no activation, so the error it carries back is never
# multiplied by anything smaller or larger than 1. Input and output gates decide what enters
# and what is read; there is no forget gate.

# %%
from IPython.display import Markdown, Math, display

from lstmsym import derive, get_cell
from lstmsym.analysis import jacobian_chain, truncation_effect
from lstmsym.analysis import plotting
from lstmsym.jacobian import diagonal, jacobian_latex
from lstmsym.printing.document import cell_document, to_markdown, truncation1997_section
from lstmsym.printing.layout import Document

cell = get_cell("lstm1997")
display(Markdown(to_markdown(cell_document(cell, parts=("forward",)))))

# %% [markdown]
# **The CEC, from the derivation.** The one-step Jacobians of the states, read off the derived
# backward step (`lstmsym.jacobian`): $\partial C_t/\partial C_{t-1}$ is the identity for the
# 1997 cell and $\mathrm{diag}(f_t)$ for the forget-gate LSTM.

# %%
display(Math(r"\begin{aligned}" + jacobian_latex(cell) + r"\end{aligned}"))
print("lstm1997: dC_t/dC_(t-1) = diag(", diagonal(cell, "C", "C"), ")")
print("lstm:     dC_t/dC_(t-1) = diag(", diagonal(get_cell("lstm"), "C", "C"), ")")

# %% [markdown]
# Over $k$ steps the carousel's own path stays exactly 1, while the paths through $h$ (the
# gates read $h_{t-1}$) make the full $\partial C_t/\partial C_{t-k}$ drift: the 1997 cell does
# not vanish, but it can grow.

# %%
chain = jacobian_chain("lstm1997", k_max=50, of="C", radius=1.0)
print("CEC path, k = 1..50, all exactly 1:", set(chain.cec_norms) == {1.0})
print("all paths ||dC_T/dC_(T-k)|| at k = 1, 10, 50:",
      [round(chain.norms[k - 1], 3) for k in (1, 10, 50)])

# %% [markdown]
# **The 1997 truncation.** Errors arriving at the net inputs of the gates and of the cell are
# not propagated back in time; only the CEC carries error back. The derivation with
# `truncation="1997"` shows which terms go, and its chain $\partial C_t/\partial C_{t-k}$ is
# the identity for every $k$.

# %%
display(Markdown(to_markdown(Document("Exact and truncated gradient", (
    truncation1997_section(cell, derive(cell), derive(cell, truncation="1997")),)))))
truncated = jacobian_chain("lstm1997", k_max=20, of="C", truncation="1997")
print("truncated ||dC_T/dC_(T-k)||, k = 1..20:", sorted(set(truncated.norms)))

# %% [markdown]
# **Truncated gradients on a long-lag task** (loss at the last step only), with the generated
# kernel: truncated BPTT with window $k_2$ cannot see inputs more than $k_2$ steps back, while
# the 1997 rule still reaches the first input through the carousel.

# %%
effect = truncation_effect("lstm1997", steps=60, k2s=(1, 5, 10, 20, 40))
t97 = effect.extra["truncated_1997"]
print(f"||dL/dx_0||: full BPTT {effect.input_grad_norms[-1]:.3g}, "
      f"1997 rule {t97['input_grad_norm'][-1]:.3g}")
for k, err, reach in zip(effect.k2s, effect.rel_error, effect.reach):
    print(f"k2 = {k:2d}: reaches lag {reach:2d}, parameter gradient error {err:.3f}")
fig = plotting.plot_truncation([effect])
