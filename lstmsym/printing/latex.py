"""LaTeX printer for vector-level expressions (lstmsym.expr), in the lecture notes' notation.

One ``_print_<Node>`` method per node of the expression tree (SymPy's ``Printer`` dispatches on
the class name). Names of quantities come from lstmsym.naming only, so documents and kernels use
one vocabulary. Conventions (DESIGN.md, lecture notes seed 001):

- column vectors: the affine map is ``W v``, its adjoint ``W^{\\top} v``;
- ``\\circ`` is the Hadamard product, ``u\\, v^{\\top}`` an outer product;
- ``\\nabla_{C_{t}}\\mathrm{Div}`` is the total gradient of the divergence with respect to C_t,
  ``\\partial_{h_{t}}\\mathrm{Div}`` the part arriving directly from the output at t;
- ``\\sigma'(\\bar{f}_{t})``, ``\\tanh'(C_{t})``: derivatives at the point they are taken;
- memory-cell blocks (1997 LSTM): ``v \\otimes \\mathbf{1}_{k}`` repeats each entry of v k times
  (a gate shared by the k cells of its block), ``(I \\otimes \\mathbf{1}_{k}^{\\top})\\, u`` sums
  each run of k entries (its adjoint).

Parentheses follow precedence: sum < negation < Hadamard/Kronecker < matrix product < atoms.

>>> from lstmsym.expr import Sym, Grad
>>> W = Sym("W_hf", "param", ("H", "H")); g = Grad(Sym("f_bar", "var", ("H",), 1))
>>> latex(W.T @ g)
'W_{hf}^{\\\\top} \\\\nabla_{\\\\bar{f}_{t+1}}\\\\mathrm{Div}'
"""
from __future__ import annotations

from fractions import Fraction

from sympy.printing.printer import Printer

from lstmsym import expr as E
from lstmsym.naming import latex_name

# Binding strength of each node as printed (higher binds tighter).
PREC_ADD = 10
PREC_NEG = 15
PREC_HAD = 20
PREC_SCALE = 25
PREC_MATVEC = 30
PREC_ATOM = 100

_PREC = {
    E.Add: PREC_ADD,
    E.Had: PREC_HAD,
    E.Repeat: PREC_HAD,
    E.MatVec: PREC_MATVEC,
    E.Outer: PREC_MATVEC,
    E.BlockSum: PREC_MATVEC,
}


def precedence(e) -> int:
    """How tightly ``e`` binds when printed."""
    if isinstance(e, E.Scale):
        return PREC_NEG if e.coeff < 0 else PREC_SCALE
    return _PREC.get(type(e), PREC_ATOM)


class LatexPrinter(Printer):
    """Prints lstmsym.expr trees as LaTeX math (no surrounding ``$``)."""

    printmethod = "_lstmsym_latex"
    _default_settings = {
        "transpose": r"^{\top}",
        # a superscript on every nabla, e.g. "(c)" for the gradients of one truncated pass
        "grad_mark": None,
    }

    # --- helpers ----------------------------------------------------------------------------
    def paren(self, e, below: int) -> str:
        """Print ``e``, in parentheses when it binds less tightly than ``below``."""
        s = self._print(e)
        if precedence(e) < below:
            return r"\left(%s\right)" % s
        return s

    def signed_terms(self, e) -> list:
        """The summands of ``e`` as (sign, text) pairs: sign is "+" or "-".

        Terms keep their order, except that a sum opening with a negative term opens with its
        first positive one instead (``-a + b`` prints as ``b - a``).
        """
        out = []
        for t in E.terms(e) or [e]:
            if isinstance(t, E.Scale) and t.coeff < 0:
                out.append(("-", self._print(E.scale(-t.coeff, t.arg))))
            else:
                out.append(("+", self._print(t)))
        first_positive = next((k for k, (sign, _) in enumerate(out) if sign == "+"), 0)
        if first_positive:
            out.insert(0, out.pop(first_positive))
        return out

    @staticmethod
    def superscript(base: str, sup: str) -> str:
        """``base^{sup}``, braced when ``base`` already carries a superscript (y^{c} -> {y^{c}})."""
        if "^" in base:
            base = "{%s}" % base
        return "%s%s" % (base, sup)

    def _coeff(self, c: Fraction) -> str:
        if c.denominator == 1:
            return str(c.numerator)
        return r"\frac{%d}{%d}" % (c.numerator, c.denominator)

    # --- leaves -----------------------------------------------------------------------------
    def _print_Sym(self, e):
        return latex_name(e)

    def _print_Grad(self, e):
        mark = self._settings["grad_mark"]
        if mark:
            return latex_name(e).replace("\\nabla", "\\nabla^{%s}" % mark, 1)
        return latex_name(e)

    def _print_OutGrad(self, e):
        return latex_name(e)

    def _print_Ones(self, e):
        return r"\mathbf{1}"

    def _print_Zero(self, e):
        return r"\mathbf{0}"

    # --- sums -------------------------------------------------------------------------------
    def _print_Add(self, e):
        return join_signed(self.signed_terms(e))

    def _print_Scale(self, e):
        c = e.coeff
        if c < 0:
            return "-" + self.paren(E.scale(-c, e.arg), PREC_NEG + 1)
        return r"%s\, %s" % (self._coeff(c), self.paren(e.arg, PREC_HAD))

    # --- products ---------------------------------------------------------------------------
    def _print_Had(self, e):
        return r" \circ ".join(self.paren(a, PREC_ATOM) if not isinstance(a, E.Had)
                               else self._print(a) for a in e.args)

    def _print_Transpose(self, e):
        return self.superscript(self.paren(e.arg, PREC_ATOM), self._settings["transpose"])

    def _print_MatVec(self, e):
        mat = self.paren(e.mat, PREC_ATOM)
        if e.transpose:
            mat = self.superscript(mat, self._settings["transpose"])
        return "%s %s" % (mat, self.paren(e.vec, PREC_MATVEC))

    def _print_Outer(self, e):
        left = self.paren(e.left, PREC_ATOM)
        right = self.paren(e.right, PREC_ATOM)
        return r"%s\, %s" % (left, self.superscript(right, self._settings["transpose"]))

    # --- elementwise functions ----------------------------------------------------------------
    def _call(self, head: str, arg) -> str:
        if precedence(arg) >= PREC_ATOM:
            return "%s(%s)" % (head, self._print(arg))
        return r"%s\left(%s\right)" % (head, self._print(arg))

    def _print_Act(self, e):
        return self._call(e.fn.latex, e.arg)

    def _print_ActDeriv(self, e):
        return self._call(e.fn.latex + "'", e.arg)

    # --- memory-cell blocks -------------------------------------------------------------------
    def _print_Repeat(self, e):
        return r"%s \otimes \mathbf{1}_{%d}" % (self.paren(e.arg, PREC_ATOM), e.k)

    def _print_BlockSum(self, e):
        return r"\left(I \otimes \mathbf{1}_{%d}^{\top}\right) %s" % (
            e.k, self.paren(e.arg, PREC_MATVEC))

    def emptyPrinter(self, e):
        raise TypeError(f"the LaTeX printer cannot print {type(e).__name__}: {e!r}")


def join_signed(terms, first_line=True) -> str:
    """Signed terms (as from ``signed_terms``) as one sum: ``a - b + c``.

    With ``first_line=False`` the first term keeps its sign too (a continuation line).
    """
    out = []
    for k, (sign, tex) in enumerate(terms):
        if k == 0 and first_line:
            out.append(("-" if sign == "-" else "") + tex)
        else:
            out.append(f"{sign} {tex}")
    return " ".join(out)


def latex(e, **settings) -> str:
    """LaTeX for an lstmsym expression.

    >>> from lstmsym.expr import Sym
    >>> from lstmsym.ops import sigmoid
    >>> latex(sigmoid(Sym("f_bar", "var", ("H",))))
    '\\\\sigma(\\\\bar{f}_{t})'
    """
    return LatexPrinter(settings).doprint(e)


__all__ = ["LatexPrinter", "join_signed", "latex", "precedence"]
