"""The built-in cells, each with its source. Variants are edits of a base cell, never copies.

Equations and conventions: ../shared/REFERENCES.md (column vectors, pre-activations split out
as ``<gate>_bar``). Parameter names follow the lecture notes for the LSTM family (W_xf, W_hf,
w_Cf, b_f) and the papers' names elsewhere.
"""
from __future__ import annotations

from functools import lru_cache

from lstmsym.cells import register
from lstmsym.cells.spec import CellBuilder
from lstmsym.ops import sigmoid, tanh

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


@register
@lru_cache(maxsize=None)
def peephole_lstm():
    return _lstm_family(
        "peephole-lstm", "diag", source=LECTURE + "; diagonal peepholes as in Gers, Schraudolph "
        "& Schmidhuber 2002, JMLR 3, Sec. 2",
        description="LSTM with forget gate and diagonal peephole connections "
                    "(i, f peek at C_{t-1}, o at C_t)")


@register
@lru_cache(maxsize=None)
def lstm():
    return _lstm_family(
        "lstm", None, source="Gers, Schmidhuber & Cummins 2000, 'Learning to Forget', Neural "
        "Computation 12(10), Sec. 2 (forget gate); PyTorch nn.LSTM equations",
        description="LSTM with forget gate, no peepholes")


register(peephole_lstm, "peephole-lstm")
register(lstm, "lstm")
