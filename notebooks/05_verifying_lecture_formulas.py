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
# # 05 · Verifying the lecture's hand-derived formulas
#
# The lecture notes (seed 001) give the backward pass of the peephole LSTM by hand. `lstmsym`
# judges such a formula against its own derivation: *correct* with a proof (both sides equal
# after expansion at small sizes, with σ and tanh as functions), or *wrong* with the terms
# that differ, the corrected formula and numbers where the two disagree (the same judge as
# `lstmsym verify`). The `lecture` profile reads the notes' notation: row vectors, `W_{Cf}`
# for the peepholes, and `σ'(.)` placeholders resolved to the gate they belong to.

# %%
from IPython.display import display

from lstmsym.verification.judge import verify

# %% [markdown]
# **$\nabla_{C_t}\mathrm{Div}$ as printed in the notes.** The printed line ends in "…"; cut
# there, its last term carries a factor $\tanh(.)$ that belongs to the next part of the
# formula, and the judge says exactly that.

# %%
lecture_C = (r"\nabla_{C_{t}} Div = \nabla_{h_{t}} Div \circ\left(o_{t} \circ \tanh^{\prime}(.)"
             r" + \tanh(.) \circ \sigma^{\prime}(.) W_{Co}\right) + \nabla_{C_{t+1}} Div \circ"
             r"\left(f_{t+1} + C_{t} \circ \sigma^{\prime}(.) W_{Cf} + \tilde{C}_{t+1} \circ"
             r" \sigma^{\prime}(.) W_{Ci} \circ \tanh(.)\right)")
result = verify("peephole-lstm", None, lecture_C, profile="lecture")
display(result)

# %% [markdown]
# Without that factor the formula is proven correct:

# %%
fixed_C = lecture_C.replace(r" W_{Ci} \circ \tanh(.)\right)", r" W_{Ci}\right)")
result = verify("peephole-lstm", None, fixed_C, profile="lecture")
print(result.verdict)

# %% [markdown]
# **$\nabla_{h_t}\mathrm{Div}$ as printed in the notes** (with $\nabla_{z_t}Div\,\nabla_{h_t}z_t$,
# the output's own contribution, written $\partial_{h_t}\mathrm{Div}$). The judge finds one
# term through the cell input $\tilde C_{t+1}$ written with the output gate and the input
# gate's matrix.

# %%
lecture_h = (r"\nabla_{h_{t}} Div = \partial_{h_t} Div + \nabla_{C_{t+1}} Div \circ\left(C_{t}"
             r" \circ \sigma^{\prime}(.) W_{hf} + \tilde{C}_{t+1} \circ \sigma^{\prime}(.)"
             r" W_{hi}\right) + \nabla_{C_{t+1}} Div \circ o_{t+1} \circ \tanh^{\prime}(.)"
             r" W_{hi} + \nabla_{h_{t+1}} Div \circ \tanh(.) \circ \sigma^{\prime}(.) W_{ho}")
result = verify("peephole-lstm", None, lecture_h, profile="lecture")
display(result)

# %%
fixed_h = lecture_h.replace(r"o_{t+1} \circ \tanh^{\prime}(.) W_{hi}",
                            r"i_{t+1} \circ \tanh^{\prime}(.) W_{hC}")
print(verify("peephole-lstm", None, fixed_h, profile="lecture").verdict)
