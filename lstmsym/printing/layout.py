"""Document trees and their two printers: standalone LaTeX and MathJax-ready Markdown.

A derivation document (lstmsym.printing.document) is built as a small tree of blocks —
``Section``, ``Paragraph`` (plain text mixed with inline ``Math``), ``Align`` (rows of
equations whose right-hand sides are lists of signed terms), ``Table`` — and printed by
``LatexDocumentPrinter`` or ``MarkdownDocumentPrinter``, each one ``_print_<Block>`` method per
block, as STYLE.md asks of printers. The math inside comes from lstmsym.printing.latex, so both
outputs show the same formulas.

Long sums are broken into lines at term boundaries (greedily, by an estimate of their printed
width), the same way in both outputs.

>>> doc = Document("demo", (Paragraph(("Hadamard product ", Math(r"a \\circ b"), ".")),))
>>> print(to_markdown(doc))
# demo
<BLANKLINE>
Hadamard product $a \\circ b$.
<BLANKLINE>
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sympy.printing.printer import Printer

from lstmsym.printing.latex import join_signed


# --- blocks -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Math:
    """Inline math (LaTeX, without dollars)."""

    tex: str


@dataclass(frozen=True)
class Code:
    """A code name or command, printed in monospace."""

    text: str


@dataclass(frozen=True)
class Link:
    """A link to a file next to the document (plain text in LaTeX)."""

    text: str
    target: str


@dataclass(frozen=True)
class Paragraph:
    """Plain text (``str`` parts, escaped by the printer) mixed with ``Math`` and ``Code``."""

    parts: tuple


@dataclass(frozen=True)
class Row:
    """``lhs rel t1 ± t2 ± …``: ``terms`` is a tuple of (sign, tex) with sign "+" or "-"."""

    lhs: str
    terms: tuple
    rel: str = "="


@dataclass(frozen=True)
class Align:
    """Equations aligned at their relation sign (``align*`` / ``aligned``)."""

    rows: tuple


@dataclass(frozen=True)
class Display:
    """Rows of aligned math already printed (``lhs &= rhs`` lines joined by ``\\\\``)."""

    tex: str


@dataclass(frozen=True)
class Table:
    """A table; each cell is a tuple of parts as in ``Paragraph``."""

    header: tuple
    rows: tuple


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple


@dataclass(frozen=True)
class Document:
    """A whole derivation: a title, then blocks (sections nest)."""

    title: str
    blocks: tuple


# --- line breaking ----------------------------------------------------------------------------
_INVISIBLE = re.compile(r"\\(left|right|mathrm|mathbf|operatorname|bar|tilde|hat|quad|top)\b|"
                        r"\\,|[{}^_]")
_COMMAND = re.compile(r"\\[A-Za-z]+")


def visible_width(tex: str) -> int:
    """A rough count of the characters ``tex`` shows when typeset (for line breaking)."""
    return len(_COMMAND.sub("x", _INVISIBLE.sub("", tex)))


def pack(terms, budget: int) -> list:
    """Split signed terms into lines of at most ``budget`` visible characters (greedy)."""
    lines, line, width = [], [], 0
    for sign, tex in terms:
        w = visible_width(tex) + 3
        if line and width + w > budget:
            lines.append(line)
            line, width = [], 0
        line.append((sign, tex))
        width += w
    if line:
        lines.append(line)
    return lines


_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}]| [+-] |.", re.S)
_OPEN = re.compile(r"\\left|\\[bB]igg?l|\{")
_CLOSE = re.compile(r"\\right|\\[bB]igg?r|\}")


def split_signed(tex: str):
    """The top-level summands of printed math as (sign, tex) pairs, or None if unbalanced.

    Splits at `` + `` and `` - `` outside braces and ``\\left``/``\\right`` (or ``\\bigl``/
    ``\\bigr``) pairs, which is where lstmsym.printing.latex puts them between summands.
    """
    terms, cur, depth, sign = [], [], 0, "+"
    for tok in _TOKEN.findall(tex):
        if _OPEN.fullmatch(tok):
            depth += 1
        elif _CLOSE.fullmatch(tok):
            depth -= 1
        if depth == 0 and tok in (" + ", " - "):
            terms.append((sign, "".join(cur).strip()))
            cur, sign = [], tok.strip()
            continue
        cur.append(tok)
    terms.append((sign, "".join(cur).strip()))
    if depth != 0 or not all(t for _, t in terms):
        return None
    return terms


# --- shared printer logic ---------------------------------------------------------------------
class _DocumentPrinter(Printer):
    """What both document printers share: rows of equations and paragraphs."""

    _default_settings = {"line_budget": 64, "level": 1, "numbered": False}

    def align_body(self, block: Align) -> str:
        lines = []
        for row in block.rows:
            terms = row.terms or (("+", r"\mathbf{0}"),)
            chunks = pack(terms, self._settings["line_budget"])
            lines.append(f"{row.lhs} &{row.rel} {join_signed(chunks[0])}")
            for chunk in chunks[1:]:
                lines.append(r"&\quad " + join_signed(chunk, first_line=False))
        return " \\\\\n".join(lines)

    def display_body(self, block: "Display") -> str:
        """Rows printed elsewhere (``lhs &= rhs``), broken at their top-level terms."""
        rows = []
        for line in re.split(r"\s*\\\\\s*\n", block.tex.strip()):
            lhs, sep, rhs = line.partition(" &= ")
            terms = split_signed(rhs) if sep else None
            if terms is None:
                rows.append(line)
                continue
            rows.append(self.align_body(Align((Row(lhs, tuple(terms)),))))
        return " \\\\\n".join(rows)

    def parts(self, parts) -> str:
        return "".join(self._print(p) for p in parts)

    def _print_str(self, s):
        return self.escape(s)

    def _print_Paragraph(self, b):
        return self.parts(b.parts) + "\n"

    def _print_Document(self, doc):
        return self.body(doc)

    def body(self, doc) -> str:
        return self.heading(doc.title, 0) + "\n" + self.blocks(doc.blocks, 1)

    def blocks(self, blocks, depth: int) -> str:
        out = []
        for b in blocks:
            if isinstance(b, Section):
                out.append(self.heading(b.title, depth) + "\n" + self.blocks(b.blocks, depth + 1))
            else:
                out.append(self._print(b))
        return "\n".join(out)

    def emptyPrinter(self, e):
        raise TypeError(f"{type(self).__name__} cannot print {type(e).__name__}")


# --- LaTeX ------------------------------------------------------------------------------------
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "|": r"\textbar{}"}
# Characters our sources and descriptions use that pdflatex's default fonts do not have.
_UNICODE_MATH = {"σ": r"\sigma", "∘": r"\circ", "⊙": r"\odot", "×": r"\times",
                 "≈": r"\approx",
                 "∇": r"\nabla", "≤": r"\le", "≥": r"\ge", "∑": r"\sum", "τ": r"\tau",
                 "φ": r"\varphi", "δ": r"\delta", "η": r"\eta", "λ": r"\lambda", "→": r"\to",
                 "−": "-", "ℓ": r"\ell"}

LATEX_PACKAGES = ("amsmath", "amssymb", "longtable")
PREAMBLE_OPTIONS = r"\usepackage[margin=2cm]{geometry}"


class LatexDocumentPrinter(_DocumentPrinter):
    """Prints a ``Document`` as LaTeX: a body, or (``standalone``) a compilable article."""

    HEADINGS = ("section", "subsection", "subsubsection", "paragraph")

    def escape(self, s: str) -> str:
        out = []
        for ch in s:
            if ch in _LATEX_SPECIAL:
                out.append(_LATEX_SPECIAL[ch])
            elif ch in _UNICODE_MATH:
                out.append("$%s$" % _UNICODE_MATH[ch])
            elif ord(ch) < 128 or ch.isalpha() or ch in "—–’‘“”":
                out.append(ch)
            else:
                out.append("?")
        return "".join(out)

    def heading(self, title: str, depth: int) -> str:
        level = min(depth + self._settings["level"] - 1, len(self.HEADINGS) - 1)
        star = "" if level == 0 and self._settings["numbered"] else "*"
        return "\\%s%s{%s}\n" % (self.HEADINGS[level], star, self.escape(title))

    def _print_Math(self, m):
        return "$%s$" % m.tex

    def _print_Code(self, c):
        return r"\texttt{%s}" % self.escape(c.text)

    def _print_Link(self, link):
        return r"\texttt{%s}" % self.escape(link.text)

    def _print_Align(self, b):
        return "\\begin{align*}\n%s\n\\end{align*}\n" % self.align_body(b)

    def _print_Display(self, b):
        return "\\begin{align*}\n%s\n\\end{align*}\n" % self.display_body(b)

    def _print_Table(self, b):
        cols = len(b.header)
        spec = "l" * (cols - 1) + "p{0.55\\textwidth}"
        head = " & ".join(r"\textbf{%s}" % self.parts(h) for h in b.header) + r" \\ \hline"
        rows = "\n".join(" & ".join(self.parts(c) for c in r) + r" \\" for r in b.rows)
        return ("\\begin{longtable}{%s}\n%s\n\\endhead\n%s\n\\end{longtable}\n"
                % (spec, head, rows))


def latex_preamble(title: str) -> str:
    """The preamble of a standalone document: only packages of texlive-latex-base."""
    return ("\\documentclass[11pt]{article}\n"
            + PREAMBLE_OPTIONS + "\n"
            + "".join("\\usepackage{%s}\n" % p for p in LATEX_PACKAGES)
            # reproducible PDFs: no random trailer id (dates come from SOURCE_DATE_EPOCH)
            + "\\ifdefined\\pdftrailerid\\pdftrailerid{}\\fi\n"
            + "\\setlength{\\parindent}{0pt}\n\\setlength{\\parskip}{0.5em}\n"
            + "\\allowdisplaybreaks\n\\sloppy\n"
            + "\\title{%s}\n\\date{}\n" % LatexDocumentPrinter().escape(title))


def to_latex(doc: Document, standalone: bool = False) -> str:
    """LaTeX for a document: its body, or a complete article that pdflatex compiles."""
    body = LatexDocumentPrinter().doprint(doc)
    if not standalone:
        return body
    return (latex_preamble(doc.title) + "\\begin{document}\n" + body + "\\end{document}\n")


def to_latex_collection(title: str, docs, intro=()) -> str:
    """One standalone article holding several documents, each a numbered section."""
    printer = LatexDocumentPrinter({"numbered": True})
    parts = [latex_preamble(title), "\\begin{document}\n\\maketitle\n"]
    parts.extend(printer._print(p) for p in intro)
    parts.append("\\tableofcontents\n")
    for doc in docs:
        parts.append("\\clearpage\n" + printer.body(doc))
    parts.append("\\end{document}\n")
    return "\n".join(parts)


# --- Markdown ---------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_|<>\[\]#$])")


class MarkdownDocumentPrinter(_DocumentPrinter):
    """Prints a ``Document`` as Markdown with MathJax math (``$…$``, ``$$…$$``)."""

    def escape(self, s: str) -> str:
        return _MD_SPECIAL.sub(r"\\\1", s)

    def heading(self, title: str, depth: int) -> str:
        return "#" * (depth + self._settings["level"]) + " " + self.escape(title) + "\n"

    def _print_Math(self, m):
        return "$%s$" % m.tex

    def _print_Code(self, c):
        return "`%s`" % c.text

    def _print_Link(self, link):
        return "[%s](%s)" % (self.escape(link.text), link.target)

    def _print_Align(self, b):
        return "$$\n\\begin{aligned}\n%s\n\\end{aligned}\n$$\n" % self.align_body(b)

    def _print_Display(self, b):
        return "$$\n\\begin{aligned}\n%s\n\\end{aligned}\n$$\n" % self.display_body(b)

    def _print_Table(self, b):
        def cell(parts):  # a bare | in math would end the table cell
            return self.parts(Math(p.tex.replace("|", r"\vert ")) if isinstance(p, Math)
                              else p for p in parts)
        lines = ["| " + " | ".join(cell(h) for h in b.header) + " |",
                 "|" + "---|" * len(b.header)]
        lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in b.rows]
        return "\n".join(lines) + "\n"


def to_markdown(doc: Document) -> str:
    """Markdown for a document (MathJax-ready: aligned blocks inside ``$$``)."""
    return MarkdownDocumentPrinter().doprint(doc)


__all__ = ["Math", "Code", "Link", "Paragraph", "Row", "Align", "Display", "Table", "Section", "Document",
           "LatexDocumentPrinter", "MarkdownDocumentPrinter", "to_latex", "to_markdown",
           "to_latex_collection", "latex_preamble", "visible_width", "pack"]
