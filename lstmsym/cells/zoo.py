"""The built-in cells, each with its source. Variants are edits of a base cell, never copies.

Equations and conventions: ../shared/REFERENCES.md (column vectors, pre-activations split out
as ``<gate>_bar``). Parameter names follow the lecture notes for the LSTM family (W_xf, W_hf,
w_Cf, b_f: W_<source><gate>) and the papers' names elsewhere. Sizes are "I" (input), "H"
(hidden) and, for the 1997 memory-cell blocks, "G" = H / S (one gate per block of S cells).

=====================  ==========================================================================
family                 cells
=====================  ==========================================================================
Elman RNN              elman-tanh, elman-relu, elman-sigmoid
linear recursion       linear (seed 001)
LSTM 1997              lstm1997, lstm1997-blocks (factory ``lstm1997_cell(block_size=S)``)
forget-gate LSTM       lstm
peephole LSTM          peephole-lstm (diagonal), peephole-lstm-full (the lecture's matrices)
GRU                    gru (Cho et al. 2014), gru-torch (PyTorch/cuDNN)
Greff et al. 2017      lstm-nig, lstm-nfg, lstm-nog, lstm-niaf, lstm-noaf, lstm-np, lstm-cifg,
                       lstm-fgr: edits (lstmsym.cells.edits) of peephole-lstm, their vanilla LSTM
=====================  ==========================================================================
"""
from __future__ import annotations

from functools import lru_cache

from lstmsym.cells import edits, register
from lstmsym.cells.spec import CellBuilder
from lstmsym.expr import Repeat
from lstmsym.ops import g1997, h1997, identity, relu, sigmoid, tanh

LECTURE = ("CMU 11-785 LSTM lecture (seeds 001, 002), Colah-style notation; "
           "Gers & Schmidhuber 2000, 'Recurrent nets that time and count', IJCNN")


def gate(b: CellBuilder, name: str, act, sources, peephole=None, bias=True, latex=None):
    """``name = act(sum_k W_{k name} v_k [+ w_{C name} o C] + b_name)`` with lecture names.

    ``sources`` is a list of (symbol, letter) such as ``[(h, "h"), (x, "x")]``; ``peephole`` is
    ``(C, "diag")`` for a vector peephole w_C<name> o C or ``(C, "full")`` for a matrix W_C<name>.
    """
    pre = None
    suffix = name if len(name) == 1 else name.replace("_tilde", "")
    if peephole is not None:
        c, kind = peephole
        if kind == "diag":
            w = b.param(f"w_C{suffix}", ("H",), latex=f"w_{{C{suffix}}}")
            pre = w * c
        else:
            w = b.param(f"W_C{suffix}", ("H", "H"), latex=f"W_{{C{suffix}}}")
            pre = w @ c
    for v, letter in sources:
        w = b.param(f"W_{letter}{suffix}", ("H", v.shape[0]), latex=f"W_{{{letter}{suffix}}}")
        pre = w @ v if pre is None else pre + w @ v
    if bias:
        pre = pre + b.param(f"b_{suffix}", ("H",), latex=f"b_{{{suffix}}}")
    return b.let(name, act(pre), latex=latex)


# ----- LSTM with forget gate: plain, diagonal and full peepholes ----------------------------------
def _lstm_family(name, peephole=None, source="", description=""):
    b = CellBuilder(name, source=source, description=description)
    x = b.input("x")
    h = b.state("h")
    C = b.state("C")
    src = [(h, "h"), (x, "x")]
    f = gate(b, "f", sigmoid, src, peephole and (C, peephole))
    i = gate(b, "i", sigmoid, src, peephole and (C, peephole))
    C_tilde = gate(b, "C_tilde", tanh, src, latex=r"\tilde{C}")
    C_new = b.let("C", f * C + i * C_tilde, label="cell state (constant error carousel)")
    o = gate(b, "o", sigmoid, src, peephole and (C_new, peephole))
    b.let("h", o * tanh(C_new), label="hidden output")
    return b.build()


@lru_cache(maxsize=None)
def peephole_lstm():
    return _lstm_family(
        "peephole-lstm", "diag", source=LECTURE + "; diagonal peepholes as in Gers, Schraudolph "
        "& Schmidhuber 2002, JMLR 3, Sec. 2",
        description="LSTM with forget gate and diagonal peephole connections "
                    "(i, f peek at C_{t-1}, o at C_t)")


@lru_cache(maxsize=None)
def lstm():
    return _lstm_family(
        "lstm", None, source="Gers, Schmidhuber & Cummins 2000, 'Learning to Forget', Neural "
        "Computation 12(10), Sec. 2 (forget gate); PyTorch nn.LSTM equations",
        description="LSTM with forget gate, no peepholes")



@lru_cache(maxsize=None)
def peephole_lstm_full():
    return _lstm_family(
        "peephole-lstm-full", "full", source=LECTURE + "; full peephole matrices W_Cf, W_Ci, "
        "W_Co as in the lecture's f_t = sigma(W_f [C_{t-1}, h_{t-1}, x_t] + b_f) (REFERENCES.md "
        "Sec. 6) and MatConvNet vl_nnlstmpeephole",
        description="LSTM with forget gate and full peephole matrices (i, f see C_{t-1}, "
                    "o sees C_t, each through an H x H matrix)")


# ----- Elman RNN and the linear recursion -------------------------------------------------------
def elman(act, name):
    """h_t = act(W x_t + U h_{t-1} + b) (Elman 1990)."""
    b = CellBuilder(name, source="Elman 1990, 'Finding structure in time', Cognitive Science "
                    "14(2), 179-211 (simple recurrent network); PyTorch nn.RNN equation",
                    description=f"Elman RNN, h_t = {act.name}(W x_t + U h_(t-1) + b)")
    x, h = b.input("x"), b.state("h")
    W, U = b.param("W", ("H", "I")), b.param("U", ("H", "H"))
    b.let("h", act(W @ x + U @ h + b.param("b", ("H",))), label="hidden state")
    return b.build()


@lru_cache(maxsize=None)
def linear():
    b = CellBuilder("linear", source="CMU 11-785 lecture notes, seed 001: the linear recursion "
                    "h(t) = W h(t-1) + C x(t) (why memory decays or explodes: eigenvalues of W)",
                    description="linear recurrence without activation or bias")
    x, h = b.input("x"), b.state("h")
    b.let("h", b.param("W", ("H", "H")) @ h + b.param("C", ("H", "I")) @ x,
          label="linear recursion")
    return b.build()


# ----- Hochreiter & Schmidhuber 1997 -------------------------------------------------------------
LSTM1997 = ("Hochreiter & Schmidhuber 1997, 'Long Short-Term Memory', Neural Computation 9(8), "
            "Sec. 4 (memory cells, CEC: s_c(t) = s_c(t-1) + y^in(t) g(net_c(t)), y^c(t) = "
            "y^out(t) h(s_c(t))), Sec. 4 'memory cell blocks', Sec. 5 (g = 4 sigma - 2, "
            "h = 2 sigma - 1; negative output-gate bias against memory abuse, cf. seed 003)")

# Seed 003 (a summary of the paper): "each output gate gets negative initial bias to push initial
# memory cell activations to 0". The paper's experiments use several negative values, which
# REFERENCES.md does not list; -1 is our default, a negative bias in the paper's sense.
OUTPUT_GATE_BIAS_1997 = -1.0


def lstm1997_cell(block_size: int = 1, name: str | None = None):
    """The 1997 LSTM: input and output gates, no forget gate, the constant error carousel.

    Net inputs take x_t and the cell outputs y^c(t-1) (= h_{t-1}) plus a bias; in the paper
    every net input sums over all units' activations at t-1. ``block_size = S`` lets S cells
    share one input and one output gate: the gates have G = H / S units, broadcast to their
    cells by ``Repeat`` (H must be a multiple of S).

    States: ``h`` (y^c, the cell outputs) and ``C`` (s_c, the CEC states).
    """
    S = int(block_size)
    name = name or ("lstm1997" if S == 1 else f"lstm1997-blocks{'' if S == 2 else S}")
    desc = ("1997 LSTM: input and output gates, no forget gate, CEC with self-weight 1"
            + (f", memory-cell blocks of {S} cells sharing their gates" if S > 1 else ""))
    b = CellBuilder(name, source=LSTM1997, description=desc)
    x = b.input("x")
    h = b.state("h", latex="y^{c}")
    C = b.state("C", latex="s_c")
    G = b.dim("G", "H", S) if S > 1 else "H"

    def net(target, rows):
        lt = r"\mathrm{%s}" % target
        return (b.param(f"W_{target}_x", (rows, "I"), latex=r"W_{%s,x}" % lt) @ x
                + b.param(f"W_{target}_h", (rows, "H"), latex=r"W_{%s,h}" % lt) @ h
                + b.param(f"b_{target}", (rows,), latex=r"b_{%s}" % lt))

    def share(v):
        return Repeat(v, S, "H") if S > 1 else v

    y_in = b.let("y_in", sigmoid(net("in", G)), latex=r"y^{\mathrm{in}}", pre="net_in",
                 pre_latex=r"\mathrm{net}_{\mathrm{in}}", label="input gate")
    g_c = b.let("g_c", g1997(net("c", "H")), latex="g_c", pre="net_c",
                pre_latex=r"\mathrm{net}_{c}", label="squashed cell input g(net_c)")
    s_c = b.let("C", C + share(y_in) * g_c, label="constant error carousel (self-weight 1)")
    y_out = b.let("y_out", sigmoid(net("out", G)), latex=r"y^{\mathrm{out}}", pre="net_out",
                  pre_latex=r"\mathrm{net}_{\mathrm{out}}", label="output gate")
    b.let("h", share(y_out) * h1997(s_c), label="cell output y^c = y^out h(s_c)")
    b.init["b_out"] = OUTPUT_GATE_BIAS_1997
    return b.build()


# ----- GRU: Cho et al. 2014 and the PyTorch/cuDNN form ---------------------------------------------
@lru_cache(maxsize=None)
def gru():
    b = CellBuilder("gru", source="Cho et al. 2014, 'Learning Phrase Representations using RNN "
                    "Encoder-Decoder', arXiv:1406.1078v3, Sec. 2.3, eqs. (5)-(8) (reset applied "
                    "to h_(t-1) before the matrix; z keeps the old state, as PyTorch and Keras; "
                    "Chung et al. 2014 write h = (1-z) h_(t-1) + z n, the opposite role of z)",
                    description="GRU, reset gate applied before the recurrent matrix")
    x, h = b.input("x"), b.state("h")
    src = [(x, "x"), (h, "h")]
    r = gate(b, "r", sigmoid, src)
    z = gate(b, "z", sigmoid, src)
    n = gate(b, "n", tanh, [(x, "x"), (r * h, "h")], latex=r"\tilde{h}")
    b.let("h", (1 - z) * n + z * h, label="interpolation: z keeps the old state")
    return b.build()


@lru_cache(maxsize=None)
def gru_torch():
    b = CellBuilder("gru-torch", source="PyTorch nn.GRU documentation (docs.pytorch.org, "
                    "torch.nn.GRU); cuDNN; Keras GRU(reset_after=True): n = tanh(W_in x + b_in + "
                    "r o (W_hn h + b_hn)), Cho et al. 2014 arXiv:1406.1078v1 ordering",
                    description="GRU as PyTorch/cuDNN compute it: reset gate applied after the "
                                "recurrent matrix, separate b_hn")
    x, h = b.input("x"), b.state("h")
    src = [(x, "x"), (h, "h")]
    r = gate(b, "r", sigmoid, src)
    z = gate(b, "z", sigmoid, src)
    W_xn, b_xn = b.param("W_xn", ("H", "I")), b.param("b_xn", ("H",))
    W_hn, b_hn = b.param("W_hn", ("H", "H")), b.param("b_hn", ("H",))
    n = b.let("n", tanh(W_xn @ x + b_xn + r * (W_hn @ h + b_hn)), label="candidate state")
    b.let("h", (1 - z) * n + z * h, label="interpolation: z keeps the old state")
    return b.build()


# ----- Greff et al. 2017: the eight variants of their vanilla LSTM (= peephole-lstm) --------------
GREFF = ("Greff, Srivastava, Koutnik, Steunebrink & Schmidhuber 2017, 'LSTM: A Search Space "
         "Odyssey', IEEE TNNLS 28(10), arXiv:1503.04069; vanilla LSTM: Sec. II-A (forward pass); "
         "variant ")

VARIANTS = {
    # name: (paper id, what changes, edit of the vanilla cell)
    "lstm-nig": ("NIG", "no input gate: i_t = 1", lambda c: edits.fix_gate(c, "i")),
    "lstm-nfg": ("NFG", "no forget gate: f_t = 1", lambda c: edits.fix_gate(c, "f")),
    "lstm-nog": ("NOG", "no output gate: o_t = 1", lambda c: edits.fix_gate(c, "o")),
    "lstm-niaf": ("NIAF", "no input activation function: g(x) = x",
                  lambda c: edits.set_activation(c, "C_tilde", identity)),
    "lstm-noaf": ("NOAF", "no output activation function: h(x) = x",
                  lambda c: edits.set_activation(c, "h", identity)),
    "lstm-np": ("NP", "no peepholes", edits.drop_peepholes),
    "lstm-cifg": ("CIFG", "coupled input and forget gate: f_t = 1 - i_t",
                  lambda c: edits.couple_gates(c, "f", "i")),
    "lstm-fgr": ("FGR", "full gate recurrence: every gate sees i, f, o at t-1 through R "
                 "matrices (the gates are carried as states)", edits.add_gate_recurrence),
}


def greff_variant(name: str):
    """The Greff et al. 2017 variant ``name`` as an edit of ``peephole-lstm``."""
    paper_id, change, edit = VARIANTS[name]
    return edits.renamed(edit(peephole_lstm()), name, source=GREFF + paper_id + f" ({change}; "
                         "variant list from memory, see REFERENCES.md Sec. 4)",
                         description=f"Greff et al. {paper_id}: vanilla (peephole) LSTM with "
                                     + change)


# ----- the registry, in the order `lstmsym list` shows -----------------------------------------------
register(lru_cache(maxsize=None)(lambda: elman(tanh, "elman-tanh")), "elman-tanh")
register(lru_cache(maxsize=None)(lambda: elman(relu, "elman-relu")), "elman-relu")
register(lru_cache(maxsize=None)(lambda: elman(sigmoid, "elman-sigmoid")), "elman-sigmoid")
register(linear, "linear")
register(lru_cache(maxsize=None)(lambda: lstm1997_cell(1)), "lstm1997")
register(lru_cache(maxsize=None)(lambda: lstm1997_cell(2)), "lstm1997-blocks")
register(lstm, "lstm")
register(peephole_lstm, "peephole-lstm")
register(peephole_lstm_full, "peephole-lstm-full")
register(gru, "gru")
register(gru_torch, "gru-torch")
for _name in VARIANTS:
    register(lru_cache(maxsize=None)(lambda n=_name: greff_variant(n)), _name)
