"""The answer of ``lstmsym verify``: verdict, proof or wrong terms, correction, counterexample.

``VerifyResult`` prints as plain text (the CLI), and renders in Jupyter as Markdown with the
formulas in LaTeX (``_repr_markdown_``) or as HTML (``_repr_html_``).
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field


@dataclass
class VerifyResult:
    """Attributes:
        ok: True when the claimed formula equals the derived one.
        verdict: ``"correct"`` or ``"wrong"``.
        issues: list of ``Issue`` (diagnosis.py): each wrong, missing or extra term.
        terms: (the term as typed, its reading in LaTeX) for each term of a LaTeX claim.
        claimed / derived: the two sides as lstmsym expressions (placeholders resolved).
        corrected: the derived formula in LaTeX.
        readings: placeholder -> the point it was read at.
        counterexample: {"sizes", "values", "claimed", "derived"} when wrong.
        method: how equality was decided (``"exact"``: symbolic at small sizes).
        seconds: time taken.
    """

    cell: str
    wrt: object
    profile: str = "default"
    convention: str = "column"
    formula: str | None = None
    claimed: object = None
    derived: object = None
    readings: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    ok: bool = False
    summed: bool = False
    truncation: str | None = None
    issues: list = field(default_factory=list)
    terms: list = field(default_factory=list)     # (your term as typed, how it was read)
    counterexample: dict | None = None
    note: str = ""
    method: str = "exact"
    basis: bool = False     # the proof needed the gradients at t rewritten through t+1
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        return "correct" if self.ok else "wrong"

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def __bool__(self):
        return self.ok

    @property
    def corrected(self) -> str:
        """The derived formula in LaTeX, in the convention the formula was read in."""
        return self.latex(self.derived) if self.derived is not None else ""

    def latex(self, e) -> str:
        return latex_in(self.convention)(e)

    @property
    def gradient(self) -> str:
        from lstmsym.naming import latex_name
        from lstmsym.expr import Grad
        return latex_name(Grad(self.wrt))

    def proof(self) -> str:
        if self.method == "exact":
            sizes = ", ".join(f"{k} = {v}" for k, v in sorted(self.sizes.items()))
            grads = ("gradients at t written through those at t+1" if self.basis else
                     "gradients of states as independent symbols")
            return (f"both sides expanded entrywise at {sizes} with scalar symbols (σ, tanh as "
                    f"functions, gates by their forward equations, {grads}): "
                    "claimed − derived = 0 in every entry")
        return self.method

    # --- rendering -------------------------------------------------------------------------
    def lines(self, math=lambda s: s) -> list:
        out = [f"{self.verdict}: {math(self.gradient)} for cell {self.cell} "
               f"(profile {self.profile}, {self.convention} vectors"
               + (f", truncation {self.truncation}" if self.truncation else "") + ")"]
        for hole, value in self.readings.items():
            out.append(f"  read {math(_hole_text(hole))} at {_where(self.formula, hole)} as "
                       f"{math(self.latex(value))}")
        if self.summed:
            out.append("  the sum over t is the BPTT sum; each step's term was compared")
        elif getattr(self.wrt, "role", "") == "param":
            out.append("  read as the contribution of step t (BPTT sums it over t)")
        if self.ok:
            out.append(f"  proof: {self.proof()}")
            out.append(f"  ({self.seconds:.2f} s)")
            return out
        if self.issues:
            out.append("  what is wrong:")
        for issue in self.issues:
            for i, line in enumerate(issue.latex_lines(self.latex)):
                out.append(("    " if i else "  - ") + _math_text(line, math))
        if not self.issues and self.method == "exact":
            out.append("  - no single term differs: the formulas differ as a whole")
        if self.note:
            out.append(f"  note: {self.note}")
        out.append(f"  corrected: {math(self.gradient + ' = ' + self.corrected)}")
        ce = self.counterexample
        if ce:
            sizes = ", ".join(f"{k} = {v}" for k, v in sorted(ce["sizes"].items()))
            kind = ("one step of a network: gates and states from the forward equations, "
                    "gradients at t from those at t+1; " if ce.get("network") else "")
            out.append(f"  counterexample ({kind}{sizes}):")
            for name, value in ce["values"].items():
                out.append(f"    {math(name)} = {_fmt(value)}")
            out.append(f"    yours: {_fmt(ce['claimed'])}")
            out.append(f"    lstmsym: {_fmt(ce['derived'])}")
        out.append(f"  ({self.seconds:.2f} s)")
        return out

    def __str__(self):
        return "\n".join(self.lines())

    def _repr_markdown_(self):
        return "\n\n".join(_md(line) for line in self.lines(lambda s: f"${s}$"))

    def _repr_html_(self):
        body = "<br>\n".join(html.escape(line).replace("  ", "&nbsp;&nbsp;")
                             for line in self.lines(lambda s: f"\\({s}\\)"))
        color = "#1a7f37" if self.ok else "#cf222e"
        return f'<div style="border-left:4px solid {color};padding-left:8px">{body}</div>'


def _latex(e) -> str:
    from lstmsym.printing.latex import latex
    return latex(e)


def latex_in(convention: str):
    """The LaTeX printer for a vector convention."""
    return row_latex if convention == "row" else _latex


def row_latex(e) -> str:
    """LaTeX in the row-vector convention of the lecture notes: ``(∇ ∘ a) W`` for ``Wᵀ(∇ ∘ a)``."""
    from lstmsym.printing.latex import LatexPrinter, PREC_ATOM, PREC_MATVEC

    class RowLatexPrinter(LatexPrinter):
        def _print_MatVec(self, e):
            vec = self.paren(e.vec, PREC_MATVEC + 1)
            mat = self.paren(e.mat, PREC_ATOM)
            return f"{vec} {mat}" if e.transpose else f"{vec} {mat}{self._settings['transpose']}"

        def _print_Outer(self, e):
            left = self.paren(e.left, PREC_MATVEC + 1)
            right = self.paren(e.right, PREC_ATOM)
            return f"{right}{self._settings['transpose']}\\, {left}"

        def _print_BlockSum(self, e):
            # the sum over each block's k cells acts from the right on a row: u (I ⊗ 1_k)
            return r"%s \left(I \otimes \mathbf{1}_{%d}\right)" % (
                self.paren(e.arg, PREC_MATVEC + 1), e.k)

    return RowLatexPrinter({}).doprint(e)


def _hole_text(hole) -> str:
    return f"{hole.fn.latex}{chr(39) if hole.deriv else ''}(.)"


def _where(text, hole) -> str:
    from lstmsym.parsing.reader import line_column
    if not text:
        return "?"
    line, col = line_column(text, hole.where[0])
    return f"line {line}, column {col}"


def _math_text(line: str, math) -> str:
    parts = line.split("$")
    return "".join(math(p) if i % 2 else p for i, p in enumerate(parts))


def _fmt(v) -> str:
    if isinstance(v, list) and v and isinstance(v[0], list):
        return "[" + ", ".join(_fmt(r) for r in v) + "]"
    if isinstance(v, list):
        return "[" + ", ".join(f"{x:.6g}" for x in v) + "]"
    return f"{v:.6g}"


def _md(line: str) -> str:
    stripped = line.lstrip()
    indent = len(line) - len(stripped)
    if stripped.startswith("- "):
        return ("  " * (indent // 4)) + stripped
    return stripped


__all__ = ["VerifyResult"]
