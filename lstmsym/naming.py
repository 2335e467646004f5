"""One map from quantities to their names in code and in LaTeX, so kernels and documents agree.

Convention (after Griewank & Walther, "Evaluating Derivatives", adjoint notation, and the
lecture notes' nabla notation):

=====================  ====================  ==============================================
quantity               code name             LaTeX
=====================  ====================  ==============================================
C at t / t-1 / t+1     ``C``, ``C_prev``,    ``C_{t}``, ``C_{t-1}``, ``C_{t+1}``
                       ``C_next``
pre-activation of f    ``f_bar``             ``\\bar{f}_{t}``
C-tilde                ``C_tilde``           ``\\tilde{C}_{t}``
nabla_{C_t} Div        ``dC``                ``\\nabla_{C_{t}}\\mathrm{Div}``
output part of it      ``dC_out``            ``\\partial_{C_{t}}\\mathrm{Div}``
parameter W_xf         ``W_xf``              ``W_{xf}``
=====================  ====================  ==============================================

>>> from lstmsym.expr import Sym, Grad
>>> C = Sym("C_tilde", "var", ("H",), 1)
>>> code_name(Grad(C)), latex_name(Grad(C))
('dC_tilde_next', '\\\\nabla_{\\\\tilde{C}_{t+1}}\\\\mathrm{Div}')
"""
from __future__ import annotations

from lstmsym.expr import Grad, OutGrad, Sym

TIME_SUFFIX = {-1: "_prev", 0: "", 1: "_next"}
TIME_LATEX = {-1: "t-1", 0: "t", 1: "t+1"}
DIV = r"\mathrm{Div}"


def code_name(q) -> str:
    """The Python identifier of a quantity (Sym, Grad or OutGrad)."""
    if isinstance(q, Grad):
        return "d" + code_name(q.of)
    if isinstance(q, OutGrad):
        return "d" + code_name(q.of) + "_out"
    if isinstance(q, Sym):
        if q.role == "param":
            return q.name
        return q.name + TIME_SUFFIX.get(q.time, f"_t{q.time:+d}".replace("+", "p").replace("-", "m"))
    raise TypeError(f"no code name for {q!r}")


def base_latex(name: str, explicit: str | None = None) -> str:
    """LaTeX for a name without time index: C_tilde -> \\tilde{C}, W_xf -> W_{xf}."""
    if explicit:
        return explicit
    parts = name.split("_")
    base, rest = parts[0], parts[1:]
    accents = []
    while rest and rest[-1] in ("bar", "tilde", "hat"):
        accents.append(rest.pop())
    if "tilde" in rest:
        rest.remove("tilde")
        accents.insert(0, "tilde")
    out = base if len(base) == 1 else r"\mathrm{%s}" % base
    for a in reversed(accents):
        out = "\\%s{%s}" % (a, out)
    if rest:
        out += "_{%s}" % ",".join(rest)
    return out


def latex_name(q) -> str:
    """The LaTeX of a quantity, with its time index."""
    if isinstance(q, Grad):
        return r"\nabla_{%s}%s" % (latex_name(q.of), DIV)
    if isinstance(q, OutGrad):
        return r"\partial_{%s}%s" % (latex_name(q.of), DIV)
    if isinstance(q, Sym):
        base = base_latex(q.name, q.latex)
        if q.role in ("param", "const"):
            return base
        t = TIME_LATEX.get(q.time, f"t{q.time:+d}")
        if "_" in base:
            # a name that already has a subscript keeps it; the time goes in brackets
            return r"%s(%s)" % (base, t)
        return r"%s_{%s}" % (base, t)
    raise TypeError(f"no LaTeX name for {q!r}")
