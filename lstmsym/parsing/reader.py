"""Stage 1 of reading a hand-written formula: LaTeX text -> formula tree, with positions.

The lark grammar (grammar.lark) and a Transformer with one method per rule give a small formula
tree (``Sum``, ``Term``, ``Product``, ``Quantity``, ``Call``, ``Nabla`` …) that keeps each node's
position in the text. A syntax error is a ``FormulaSyntaxError`` with the line, the column and a
caret under the problem. Stage 2 (interpret.py) turns the tree into lstmsym expressions.

Nothing the user typed is passed to eval or sympify: text only ever meets the lark parser.

>>> f = parse(r"\\nabla_{C_{t+1}}Div \\circ f_{t+1}")
>>> [type(x).__name__ for x in f.rhs.terms[0].product.factors]
['Nabla', 'Quantity']
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from lark import Lark, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from lstmsym.errors import LstmsymError, ShapeError


class FormulaSyntaxError(LstmsymError):
    """A formula that does not parse; the message shows the line, column and a caret."""


class FormulaNameError(LstmsymError):
    """A name the cell does not know; the message lists the known ones, closest first."""


class FormulaShapeError(ShapeError):
    """A term whose shapes cannot match (e.g. W h where a transpose is needed)."""


# --- the formula tree -------------------------------------------------------------------------
@dataclass
class Node:
    span: tuple = field(default=(0, 0), repr=False, compare=False)


@dataclass
class Quantity(Node):
    name: str = ""              # base name with accents: "C", "C_tilde", "f_bar"
    label: str | None = None    # subscript that is not a time: "hf" in W_{hf}
    time: int | None = None     # offset from t
    sup: str | None = None      # superscript label: "c" in \delta_t^c
    transpose: bool = False
    power: int = 1
    prime: bool = False


@dataclass
class Call(Node):
    fn: str = ""
    deriv: bool = False
    power: int = 1
    arg: Node | None = None     # None: a placeholder such as (.)


@dataclass
class Group(Node):
    expr: "Sum" = None


@dataclass
class Number(Node):
    value: Fraction = Fraction(1)


@dataclass
class OnesNode(Node):
    size: str | None = None     # the subscript of \mathbf{1}_{k} (only read after \otimes)


@dataclass
class Kron(Node):
    """``left \\otimes right``: v ⊗ 1_k (repetition) or I ⊗ 1_kᵀ (block sum); interpret.py
    decides which, and rejects anything else."""

    left: Node = None
    right: Node = None


@dataclass
class Nabla(Node):
    of: Quantity = None
    loss: bool = True           # False: the operator ∇_{h} applied to what follows (∇_{h_t} z_t)
    partial: bool = False       # \partial_{h_t}Div: the part arriving from the output


@dataclass
class Jacobian(Node):
    of: Quantity = None
    wrt: Quantity = None


@dataclass
class Postfix(Node):
    arg: Node = None
    transpose: bool = False
    power: int = 1


@dataclass
class Product(Node):
    factors: list = field(default_factory=list)


@dataclass
class Term(Node):
    sign: int = 1
    summed: bool = False        # under \sum_t
    product: Product = None


@dataclass
class Sum(Node):
    terms: list = field(default_factory=list)


@dataclass
class Formula(Node):
    lhs: Sum | None = None
    rhs: Sum = None
    text: str = ""

    def source(self, node: Node) -> str:
        return " ".join(self.text[node.span[0]:node.span[1]].split())


# --- stage 1: text -> formula tree ----------------------------------------------------------------
_GRAMMAR = Path(__file__).with_name("grammar.lark")
_PARSER = None

_READABLE = {
    "RPAR": "')'", "LPAR": "'('", "ADDOP": "'+' or '-'", "CDOT": r"'\cdot'",
    "LETTER": "a name", "NUMBER": "a number", "LOSS": "Div", "EQUALS": "'='", "RBRACE": "'}'",
    "LBRACE": "'{'", "FUNC": r"\sigma or \tanh", "NABLA": r"\nabla", "ACCENT": r"\tilde",
    "DELTA": r"\delta", "FONT": r"\mathrm", "FRAC": r"\frac", "ONES": r"\mathbf{1}",
    "PARTIAL": r"\partial", "SUM": r"\sum", "PERIOD": "'.'", "DIGIT": "a digit",
    "TOP": r"\top", "PRIME": "'", "PRIMECMD": r"\prime", "CIRC": r"\circ",
    "OTIMES": r"\otimes",
}


def _parser() -> Lark:
    global _PARSER
    if _PARSER is None:
        _PARSER = Lark(_GRAMMAR.read_text(), parser="lalr", propagate_positions=True,
                       maybe_placeholders=False)
    return _PARSER


def _span(meta) -> tuple:
    return (meta.start_pos, meta.end_pos) if not meta.empty else (0, 0)


def _script_text(items) -> str:
    """The text of a sub- or superscript, font commands dropped: {\\mathrm{out},h} -> out,h."""
    return "".join(str(t) for t in items
                   if getattr(t, "type", None) != "FONT").replace(" ", "")


@v_args(meta=True)
class FormulaTransformer(Transformer):
    """One method per grammar rule; every node keeps its span in the text."""

    def with_lhs(self, meta, ch):
        return Formula(_span(meta), ch[0], ch[2])

    def without_lhs(self, meta, ch):
        return Formula(_span(meta), None, ch[0])

    def expr(self, meta, ch):
        terms = [ch[0]]
        for op, t in zip(ch[1::2], ch[2::2]):
            if op in ("-", "−"):
                t.sign = -t.sign
            terms.append(t)
        return Sum(_span(meta), terms)

    def first_term(self, meta, ch):
        term = ch[-1]
        if len(ch) == 2 and ch[0] in ("-", "−"):
            term.sign = -term.sign
        return term

    def term(self, meta, ch):
        return Term(_span(meta), 1, len(ch) > 1, ch[-1])

    def sum_prefix(self, meta, ch):
        return "sum"

    def product(self, meta, ch):
        # \otimes binds tightest: a \circ v \otimes 1_k \circ b is a ∘ (v ⊗ 1_k) ∘ b
        factors, kron = [], False
        for c in ch:
            if isinstance(c, _Mulop):
                kron = c.otimes
            elif kron:
                left = factors.pop()
                factors.append(Kron((left.span[0], c.span[1]), left, c))
                kron = False
            else:
                factors.append(c)
        return Product(_span(meta), factors)

    def mulop(self, meta, ch):
        return _Mulop(getattr(ch[0], "type", None) == "OTIMES")

    def postfix(self, meta, ch):
        return ch[0]

    def primary(self, meta, ch):
        return ch[0]

    def factor(self, meta, ch):
        node = ch[0]
        for kind, value in ch[1:]:
            ones = node.arg if isinstance(node, Postfix) else node
            if kind == "sub" and isinstance(ones, OnesNode) and ones.size is None:
                ones.size = value       # \mathbf{1}_{k}: checked where it is used
                ones.span = (ones.span[0], meta.end_pos)
                continue
            if kind == "sub":
                raise FormulaSyntaxError(f"a subscript '_{{{value}}}' can only follow a name")
            t, p = _sup_meaning(value) if kind == "sup" else (False, 1)
            node = Postfix(_span(meta), node, t, p)
        return node

    def group(self, meta, ch):
        return Group(_span(meta), ch[1])

    def brace_group(self, meta, ch):
        return Group(_span(meta), ch[0])

    def number(self, meta, ch):
        return Number(_span(meta), Fraction(str(ch[0])))

    def ones(self, meta, ch):
        return OnesNode(_span(meta))

    # names
    def letter_name(self, meta, ch):
        return str(ch[0])

    def accent_name(self, meta, ch):
        return _accent(ch[0], ch[1])

    def accent_letter(self, meta, ch):
        return _accent(ch[0], str(ch[1]))

    def font_name(self, meta, ch):
        return ch[1]

    def word_name(self, meta, ch):
        return "".join(str(c) for c in ch[1:])

    def quantity(self, meta, ch):
        q = Quantity(_span(meta), ch[0])
        for kind, value in ch[1:]:
            if kind == "sub":
                q.label, q.time = _sub_meaning(value, q.label, q.time)
            elif kind == "prime":
                q.prime = True
            else:
                t, p = _sup_meaning(value)
                if t or p != 1:
                    q.transpose, q.power = q.transpose or t, q.power * p
                else:
                    q.sup = value
        return q

    # scripts: ("sub", text) / ("sup", text) / ("prime", None)
    def subscript(self, meta, ch):
        return ("sub", ch[0])

    def superscript(self, meta, ch):
        return ("sup", ch[0])

    def prime(self, meta, ch):
        return ("prime", None)

    def tsup(self, meta, ch):
        return ("sup", "T")

    def subbody(self, meta, ch):
        return _script_text(ch)

    def supbody(self, meta, ch):
        return _script_text(ch)

    def subitem(self, meta, ch):
        return _script_text(ch)

    def supitem(self, meta, ch):
        return _script_text(ch)

    # functions
    def call(self, meta, ch):
        head = str(ch[0])
        m = re.search(r"\\(sigma|tanh)$|\{\s*([A-Za-z]+)\s*\}", head)
        plain = {"σ": "sigma", "tanh": "tanh"}.get(head)
        c = Call(_span(meta), plain or m.group(1) or m.group(2))
        for kind, value in ch[1:-1]:
            if kind == "prime":
                c.deriv = True
            elif kind == "sup":
                t, p = _sup_meaning(value)
                if value in ("\\prime", "'"):
                    c.deriv = True
                elif t or p == 1:
                    raise FormulaSyntaxError(f"cannot read the superscript ^{{{value}}} on "
                                             f"\\{c.fn} (use ' for a derivative, ^2 for a square)")
                else:
                    c.power *= p
            else:
                raise FormulaSyntaxError(f"a subscript on \\{c.fn} is not understood")
        c.arg = ch[-1]
        return c

    def arg_expr(self, meta, ch):
        return Group(_span(meta), ch[1])

    def arg_placeholder(self, meta, ch):
        return None

    def arg_quantity(self, meta, ch):
        return ch[0]

    def placeholder(self, meta, ch):
        return None

    # gradients
    def nabla(self, meta, ch):
        return Nabla(_span(meta), ch[1], loss=len(ch) > 2)

    def pgrad(self, meta, ch):
        return Nabla(_span(meta), ch[1], loss=True, partial=True)

    def gradsub_letter(self, meta, ch):
        return Quantity(_span(meta), str(ch[0]))

    def gradsub_quantity(self, meta, ch):
        q = ch[0]
        if len(ch) > 1:
            q.time = _paren_time(ch[1])
            if q.time is None:
                raise FormulaSyntaxError(f"cannot read the time index in the subscript of "
                                         f"\\nabla (line {meta.line}, column {meta.column})")
        return q

    def delta_scripts(self, meta, ch):
        q = Quantity(_span(meta), "delta")
        for kind, value in ch[1:]:
            if kind == "sub":
                q.label, q.time = _sub_meaning(value, q.label, q.time)
            elif kind == "sup":
                q.sup = value
        # \delta_t^c: the gradient of the quantity the superscript (or label) names
        target = Quantity(_span(meta), "", q.sup or q.label, q.time)
        target.name = "delta:" + (q.sup or q.label or "")
        return Nabla(_span(meta), target)

    def delta_quantity(self, meta, ch):
        return Nabla(_span(meta), ch[1])

    def frac(self, meta, ch):
        num, den = ch[1], ch[2]
        if num[0] == "number" and den[0] == "number":
            if Fraction(den[1]) == 0:
                raise FormulaSyntaxError(f"\\frac{{{num[1]}}}{{{den[1]}}} divides by zero "
                                         f"(line {meta.line}, column {meta.column})")
            return Number(_span(meta), Fraction(num[1]) / Fraction(den[1]))
        if num[0] == "loss" and den[0] == "quantity":
            return Nabla(_span(meta), den[1])
        if num[0] == "quantity" and den[0] == "quantity":
            return Jacobian(_span(meta), num[1], den[1])
        raise FormulaSyntaxError("a \\frac must be \\frac{\\partial Div}{\\partial x}, "
                                 "\\frac{\\partial z}{\\partial x} or a number")

    def fracnum_loss(self, meta, ch):
        return ("loss", None)

    def fracnum_quantity(self, meta, ch):
        return ("quantity", ch[1])

    def fracnum_number(self, meta, ch):
        return ("number", str(ch[0]))

    def fracden_quantity(self, meta, ch):
        return ("quantity", ch[1])

    def fracden_number(self, meta, ch):
        return ("number", str(ch[0]))


class _Mulop:
    def __init__(self, otimes: bool = False):
        self.otimes = otimes


_ACCENTS = {"tilde": "tilde", "widetilde": "tilde", "bar": "bar", "overline": "bar", "hat": "hat"}


def _accent(token, inner: str) -> str:
    return f"{inner}_{_ACCENTS[str(token).lstrip(chr(92))]}"


_TIME = re.compile(r"^t([+-]\d+)?$")


def _sub_meaning(text: str, label, time):
    """A subscript is a time (t, t-1, t+1), a label (hf, Cf) or both (f,t)."""
    m = _TIME.match(text)
    if m:
        return label, int(m.group(1) or 0)
    m = re.match(r"^(.+?),t([+-]\d+)?$", text)
    if m:
        return m.group(1), int(m.group(2) or 0)
    return (text if label is None else label + text), time


def _paren_time(group) -> int | None:
    """(t), (t+1), (t-1) -> 0, 1, -1; None if the group is not a time index."""
    if not isinstance(group, Group) or len(group.expr.terms) > 2:
        return None
    first = group.expr.terms[0]
    fs = first.product.factors
    if first.sign != 1 or len(fs) != 1 or not isinstance(fs[0], Quantity) or \
            (fs[0].name, fs[0].label, fs[0].time, fs[0].sup) != ("t", None, None, None):
        return None
    if len(group.expr.terms) == 1:
        return 0
    second = group.expr.terms[1]
    gs = second.product.factors
    if len(gs) != 1 or not isinstance(gs[0], Number) or gs[0].value.denominator != 1:
        return None
    return second.sign * int(gs[0].value)


def _sup_meaning(text: str):
    """(is a transpose, power) of a superscript."""
    if text in ("T", "\\top", "\\intercal", "⊤") or re.fullmatch(r"\\mathsf\{?T\}?", text):
        return True, 1
    if text.isdigit():
        if int(text) < 1:
            raise FormulaSyntaxError(f"the power ^{{{text}}} is not understood: write a "
                                     "positive power (^2 squares elementwise), ^T or ^\\top")
        return False, int(text)
    return False, 1


def parse(text: str) -> Formula:
    """Parse a formula; raise ``FormulaSyntaxError`` with line, column and caret on failure."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise FormulaSyntaxError(_syntax_message(text, exc)) from None
    try:
        formula = FormulaTransformer().transform(tree)
    except Exception as exc:  # lark wraps errors raised in callbacks
        inner = getattr(exc, "orig_exc", exc)
        if isinstance(inner, LstmsymError):
            raise inner from None
        raise
    formula.text = text
    return formula


def dims_text(shape) -> str:
    """A shape as the messages write it: ("H", "I") -> "H×I"."""
    return "×".join(str(d) for d in shape)


def line_column(text: str, pos: int) -> tuple:
    """(line, column), both from 1, of the character at ``pos`` in ``text``."""
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def located(text: str, pos: int, what: str) -> str:
    """``line L, column C: what`` with the line of the text and a caret under position pos."""
    line, col = line_column(text, pos)
    src = text.splitlines()[line - 1] if text.splitlines() else ""
    return f"line {line}, column {col}: {what}\n  {src}\n  {' ' * (col - 1)}^"


def _syntax_message(text: str, exc: UnexpectedInput) -> str:
    line = getattr(exc, "line", None)
    col = getattr(exc, "column", None)
    lines = text.splitlines() or [""]
    if isinstance(exc, UnexpectedEOF) or line is None or line < 1:
        line, col = len(lines), len(lines[-1]) + 1
        what = "the formula ends too early"
    elif isinstance(exc, UnexpectedCharacters):
        what = f"cannot read {text[exc.pos_in_stream:exc.pos_in_stream + 12].split()[0]!r}"
    elif isinstance(exc, UnexpectedToken):
        tok = exc.token
        what = ("the formula ends too early" if tok.type == "$END"
                else f"unexpected {str(tok)!r}")
        if tok.type == "$END":
            line, col = len(lines), len(lines[-1]) + 1
    else:  # pragma: no cover
        what = "cannot parse"
    src = lines[line - 1] if line <= len(lines) else ""
    caret = " " * (col - 1) + "^"
    expected = sorted({_READABLE.get(e, e) for e in (getattr(exc, "expected", None) or
                                                       getattr(exc, "allowed", None) or ())
                       if not e.startswith("__")})
    hint = f"\n  expected: {', '.join(expected[:8])}" if expected else ""
    return f"line {line}, column {col}: {what}\n  {src}\n  {caret}{hint}"


__all__ = ["parse", "located", "line_column", "dims_text", "Formula", "FormulaSyntaxError",
           "FormulaNameError", "FormulaShapeError"]
