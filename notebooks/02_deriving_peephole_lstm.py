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
# # 02 · Deriving the peephole LSTM
#
# The cell of the lecture notes: forget, input and output gates that also look at the cell
# state (peepholes). `lstmsym` writes it as data, derives its backward step with one table of
# rules, and prints both in the notes' notation (the same document as
# `lstmsym derive peephole-lstm --format markdown`).

# %%
from IPython.display import Markdown, Math, display

from lstmsym import derive, get_cell, latex
from lstmsym.printing.document import cell_document, step_section, to_markdown
from lstmsym.printing.layout import Document

cell = get_cell("peephole-lstm")
display(Markdown(to_markdown(cell_document(cell, parts=("forward",)))))

# %% [markdown]
# The total gradients of the two states, with every intermediate substituted away (compare
# with the lecture's $\nabla_{C_t}\mathrm{Div}$ and $\nabla_{h_t}\mathrm{Div}$ in seed 001):

# %%
d = derive(cell)
for state in ("C", "h"):
    display(Math(r"\nabla_{%s_t}\mathrm{Div} = %s" % (state, latex(d.closed_form(state)))))

# %% [markdown]
# The whole one-step backward pass: every gate's delta, what step $t$ passes back to $t-1$,
# and the per-step parameter gradients.

# %%
display(Markdown(to_markdown(Document("One backward step", (step_section(cell, d),)))))
