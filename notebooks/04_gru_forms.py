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
# # 04 · Two GRUs: Cho et al. (2014) and PyTorch/cuDNN
#
# Both gate the update with $z_t$ and reset with $r_t$; they differ in *where* the reset
# acts: before the recurrent matrix ($W_{hn}(r_t \circ h_{t-1})$, `gru`) or after it
# ($r_t \circ (W_{hn} h_{t-1} + b_{hn})$, `gru-torch`, which is why PyTorch keeps a separate
# bias $b_{hn}$). Same idea, different function, different gradient.

# %%
from IPython.display import Markdown, Math, display

from lstmsym.analysis import jacobian_chain, plotting
from lstmsym.analysis.compare import side_by_side
from lstmsym.jacobian import jacobian_latex
from lstmsym.printing.layout import to_markdown

display(Markdown(to_markdown(side_by_side(["gru", "gru-torch"], "GRU forms"))))

# %% [markdown]
# **The backward step.** What one step sends back to $h_{t-1}$ for a cotangent $u$ on $h_t$,
# $(\partial h_t/\partial h_{t-1})^\top u$, from each derivation (`lstmsym.jacobian`). The
# reset gate sits inside the matrix product in one form and outside it in the other, so
# $W_{hn}^\top$ meets $r_t$ in a different place.

# %%
for name in ("gru", "gru-torch"):
    display(Markdown(f"`{name}`"))
    display(Math(r"\begin{aligned}" + jacobian_latex(name) + r"\end{aligned}"))

# %% [markdown]
# **How long each remembers**: the norm of $\partial h_T/\partial h_{T-k}$ along a random
# trajectory (recurrent matrices at spectral radius 1), against the Elman cell.

# %%
chains = [jacobian_chain(c, k_max=40, radius=1.0) for c in ("gru", "gru-torch", "elman-tanh")]
for c in chains:
    print(f"{c.cell:10s} ||dh_T/dh_(T-k)|| at k = 1, 10, 40: "
          + ", ".join(f"{c.norms[k - 1]:.3g}" for k in (1, 10, 40)))
fig = plotting.plot_jacobians(chains)
