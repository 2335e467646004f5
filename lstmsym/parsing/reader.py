"""Read a hand-written backward formula: LaTeX text -> formula tree -> lstmsym expressions.

Two stages, mirroring the printers:

1. ``parse(text)``: the lark grammar (grammar.lark) and a Transformer with one method per rule
   give a small formula tree (``Sum``, ``Term``, ``Product``, ``Quantity``, ``Call``, ``Nabla`` …)
   that keeps each node's position in the text. A syntax error is a ``FormulaSyntaxError`` with
   the line, the column and a caret under the problem.
2. ``Reader(cell, profile).read(tree)``: names are resolved through the notation profile
   (lstmsym.verification.profiles), and products are read as the profile's convention says:
   in a product, a vector acts as a diagonal matrix, and the chain is applied to the gradient at
   its left (row-vector convention: ``∇ ∘ a W`` is ``Wᵀ(∇ ∘ a)``) or at its right (column
   convention: ``Wᵀ(∇ ∘ a)`` as written). Placeholders such as ``\\sigma'(.)`` become ``Hole``
   nodes that the judge resolves.

Nothing the user typed is passed to eval or sympify: text only ever meets the lark parser.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from lstmsym.errors import LstmsymError, ShapeError
from lstmsym.expr import (Act, ActDeriv, Expr, Grad, MatVec, Ones, OutGrad, Outer, Sym, add,
                          had, scale)
from lstmsym.ops import ACTIVATIONS, relu, sigmoid, tanh

FUNCTIONS = {"sigma": sigmoid, "sigm": sigmoid, "sigmoid": sigmoid, "tanh": tanh,
             "ReLU": relu, "relu": relu}


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
    pass


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
    "RPAR": "')'", "LPAR": "'('", "ADDOP": "'+' or '-'", "CIRC": r"'\circ'", "CDOT": r"'\cdot'",
    "LETTER": "a name", "NUMBER": "a number", "LOSS": "Div", "EQUALS": "'='", "RBRACE": "'}'",
    "LBRACE": "'{'", "FUNC": r"\sigma or \tanh", "NABLA": r"\nabla", "ACCENT": r"\tilde",
    "DELTA": r"\delta", "FONT": r"\mathrm", "FRAC": r"\frac", "ONES": r"\mathbf{1}",
    "PARTIAL": r"\partial", "SUM": r"\sum", "PERIOD": "'.'", "DIGIT": "a digit",
    "TOP": r"\top", "PRIME": "'", "PRIMECMD": r"\prime", "CIRC": r"\circ",
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
            if op == "-":
                t.sign = -t.sign
            terms.append(t)
        return Sum(_span(meta), terms)

    def first_term(self, meta, ch):
        term = ch[-1]
        if len(ch) == 2 and ch[0] == "-":
            term.sign = -term.sign
        return term

    def term(self, meta, ch):
        return Term(_span(meta), 1, len(ch) > 1, ch[-1])

    def sum_prefix(self, meta, ch):
        return "sum"

    def product(self, meta, ch):
        return Product(_span(meta), [c for c in ch if not isinstance(c, _Mulop)])

    def mulop(self, meta, ch):
        return _Mulop()

    def postfix(self, meta, ch):
        return ch[0]

    def primary(self, meta, ch):
        return ch[0]

    def factor(self, meta, ch):
        node = ch[0]
        for kind, value in ch[1:]:
            if kind == "sub":
                raise FormulaSyntaxError(f"a subscript '_{{{value}}}' can only follow a name")
            t, p = _sup_meaning(value) if kind == "sup" else (False, 1)
            node = Postfix(_span(meta), node, t, p)
        return node

    def group(self, meta, ch):
        return Group(_span(meta), ch[1])

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
        c = Call(_span(meta), m.group(1) or m.group(2))
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
    pass


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
    if text in ("T", "\\top", "\\intercal") or re.fullmatch(r"\\mathsf\{?T\}?", text):
        return True, 1
    if text.isdigit():
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


# --- stage 2: formula tree -> lstmsym expressions ----------------------------------------------
@dataclass(frozen=True)
class Hole(Expr):
    """A placeholder such as sigma'(.): the judge decides the point it is taken at."""

    fn: object
    deriv: bool
    ident: int
    shape: tuple
    where: tuple = field(default=(0, 0), compare=False)

    def __repr__(self):
        return f"{self.fn.name}{chr(39) if self.deriv else ''}(.#{self.ident})"


@dataclass
class Claim:
    """What the user wrote, as lstmsym expressions."""

    expr: Expr
    lhs: object | None          # the quantity named on the left of '=' (a Sym) or None
    terms: list                 # (source text, Expr) per written term
    summed: bool                # a \sum over t appeared
    holes: dict                 # ident -> Hole


class Value:
    """A factor read in context: a vector, a matrix, a transposed vector, a number, a group."""

    def __init__(self, kind, expr=None, node=None, transpose=False):
        self.kind, self.expr, self.node, self.transpose = kind, expr, node, transpose


class Reader:
    """Turn a parsed formula into lstmsym expressions for one cell and notation profile."""

    def __init__(self, cell, profile, convention: str | None = None, names: dict | None = None):
        self.cell, self.profile = cell, profile
        self.convention = convention or profile.convention
        if self.convention not in ("row", "column"):
            raise LstmsymError(f"unknown convention {self.convention!r}; use row or column")
        self.names = dict(profile.names)
        self.names.update(names or {})
        self.symbols = _cell_symbols(cell)
        self.activations = _cell_activations(cell)
        self.by_latex = self.latex_table()
        self.holes = {}
        self.formula = None

    # --- entry points -----------------------------------------------------------------------
    def read(self, formula: Formula) -> Claim:
        self.formula = formula
        lhs = None
        if formula.lhs is not None:
            lhs = self.read_lhs(formula.lhs)
        terms, summed = [], False
        for t in formula.rhs.terms:
            summed = summed or t.summed
            terms.append((formula.source(t), self.term(t)))
        expr = add(*[e for _, e in terms]) if len(terms) > 1 else terms[0][1]
        return Claim(expr, lhs, terms, summed, dict(self.holes))

    def read_lhs(self, s: Sum):
        if len(s.terms) == 1 and len(s.terms[0].product.factors) == 1:
            f = s.terms[0].product.factors[0]
            if isinstance(f, Nabla) and f.loss:
                return self.quantity(f.of).expr
        raise LstmsymError(f"the left-hand side {self.formula.source(s)!r} should be one "
                           "gradient such as \\nabla_{C_t}\\mathrm{Div}")

    def wrt(self, text: str) -> Sym:
        """Read a --wrt argument such as C_t, h_{t-1}, W_hf, \\bar{f}_t or \\nabla_{C_t}Div."""
        plain = self.names.get(text.strip(), text.strip())
        if plain in self.symbols:       # the cell's own name: f_bar, C_tilde, W_hf
            sym = self.symbols[plain]
            return sym if sym.role in ("param", "const") else sym.at(0)
        f = parse(text)
        self.formula = f
        factors = f.rhs.terms[0].product.factors if len(f.rhs.terms) == 1 else []
        if len(factors) == 1:
            node = factors[0]
            if isinstance(node, Nabla):
                node = node.of
            if isinstance(node, Quantity):
                v = self.quantity(node)
                if isinstance(v.expr, Sym):
                    return v.expr
        raise LstmsymError(f"--wrt {text!r}: name one quantity, such as C_t, h_t, x_t, W_hf "
                           "or C_{t-1}")

    # --- sums and terms ----------------------------------------------------------------------
    def sum(self, s: Sum) -> Expr:
        return add(*[self.term(t) for t in s.terms]) if len(s.terms) > 1 else self.term(s.terms[0])

    def term(self, t: Term) -> Expr:
        try:
            e = self.chain(None, t.product.factors, t)
        except ShapeError as exc:
            if isinstance(exc, FormulaShapeError):
                raise
            raise self.shape_error(t, str(exc)) from None
        return scale(t.sign, e)

    def shape_error(self, node, detail) -> FormulaShapeError:
        line, col = self.position(node)
        return FormulaShapeError(f"shape error in the term `{self.formula.source(node)}` (line "
                                 f"{line}, column {col}): {detail}")

    def position(self, node):
        text = self.formula.text
        start = node.span[0]
        line = text.count("\n", 0, start) + 1
        col = start - (text.rfind("\n", 0, start) + 1) + 1
        return line, col

    # --- products: the chain rule written left to right (row) or right to left (column) ------
    def chain(self, seed, factors, term) -> Expr:
        values = self.values(factors)
        coeff = Fraction(1)
        rest = []
        for v in values:
            if v.kind == "num":
                coeff *= v.expr
            else:
                rest.append(v)
        if self.convention == "column":
            rest = rest[::-1]
        acc, outer_left = seed, None
        for v in rest:
            if acc is None:
                if v.kind == "group":
                    acc = self.sum(v.node.expr)
                elif v.kind == "vec":
                    acc = v.expr
                elif v.kind == "tvec" and self.convention == "row" and outer_left is None:
                    outer_left = v.expr
                elif v.kind == "tvec" and self.convention == "column" and outer_left is None:
                    outer_left = v.expr
                else:
                    side = "start" if self.convention == "row" else "end"
                    raise self.shape_error(term, f"`{self.formula.source(v.node)}` is a matrix "
                                           f"and cannot {side} a product in the "
                                           f"{self.convention}-vector convention (is the "
                                           "convention right? see --convention)")
                continue
            acc = self.apply(acc, v, term)
        if acc is None:
            acc = Ones(("H",))
        if outer_left is not None:
            acc = Outer(acc, outer_left) if self.convention == "column" else Outer(outer_left, acc)
        return scale(coeff, acc)

    def apply(self, acc: Expr, v: Value, term) -> Expr:
        if v.kind == "vec":
            if v.expr.shape != acc.shape:
                raise self.shape_error(term, f"`{self.formula.source(v.node)}` has size "
                                       f"{_dims(v.expr.shape)} but is multiplied elementwise "
                                       f"with a vector of size {_dims(acc.shape)}")
            return had(acc, v.expr) if self.convention == "row" else had(v.expr, acc)
        if v.kind == "mat":
            # row: acc M = M^T acc; column: M acc
            transpose = (not v.transpose) if self.convention == "row" else v.transpose
            rows = v.expr.shape[0] if transpose else v.expr.shape[1]
            if rows != acc.shape[0]:
                shown = self.formula.source(v.node)
                m, n = v.expr.shape if not v.transpose else v.expr.shape[::-1]
                hint = (" a transpose is missing or misplaced" if v.expr.shape[::-1][0] ==
                        acc.shape[0] or v.expr.shape[0] == acc.shape[0] else "")
                raise self.shape_error(term, f"`{shown}` is {_dims((m, n))} and cannot multiply "
                                       f"a vector of size {_dims(acc.shape)} here;{hint} "
                                       f"({self.convention}-vector convention)")
            return MatVec(v.expr, acc, transpose)
        if v.kind == "group":
            out = [scale(t.sign, self.chain(acc, t.product.factors, t)) for t in v.node.expr.terms]
            return add(*out)
        raise self.shape_error(term, f"`{self.formula.source(v.node)}` (a transposed vector) "
                               "can only stand at the end of an outer product")

    def latex_table(self) -> dict:
        """How each of the cell's names reads when written as the printer writes it
        (y^{c}, s_c, \\tilde{h}, W_{\\mathrm{in},x}): reader key -> the cell's name."""
        from lstmsym.naming import base_latex
        table = {}
        for name, sym in self.symbols.items():
            try:
                f = parse(base_latex(name, sym.latex))
            except LstmsymError:
                continue
            fs = f.rhs.terms[0].product.factors if len(f.rhs.terms) == 1 else []
            if len(fs) == 1 and isinstance(fs[0], Quantity):
                table.setdefault(_key(fs[0]), name)
        return table

    def prepass(self, factors) -> list:
        """s_c(t+1): a time in parentheses; h'(s_c(t)): a one-letter activation of the cell."""
        out, i = [], 0
        while i < len(factors):
            f = factors[i]
            nxt = factors[i + 1] if i + 1 < len(factors) else None
            if isinstance(f, Quantity) and f.time is None and isinstance(nxt, Group):
                t = _paren_time(nxt)
                if t is not None:
                    out.append(replace(f, time=t, span=(f.span[0], nxt.span[1])))
                    i += 2
                    continue
                fn = self.activations.get(f.name)
                if fn is not None and f.label is None and f.sup is None:
                    out.append(Call((f.span[0], nxt.span[1]), fn.name, f.prime, 1, nxt))
                    i += 2
                    continue
            out.append(f)
            i += 1
        return out

    def values(self, factors) -> list:
        factors = self.prepass(factors)
        out, i = [], 0
        while i < len(factors):
            f = factors[i]
            # \nabla_{z_t}Div \nabla_{h_t} z_t (or with \frac): the gradient arriving from the output
            if isinstance(f, Nabla) and f.loss and i + 1 < len(factors):
                nxt = factors[i + 1]
                wrt = None
                if isinstance(nxt, Jacobian) and self.same(nxt.of, f.of):
                    wrt, step = nxt.wrt, 2
                elif (isinstance(nxt, Nabla) and not nxt.loss and i + 2 < len(factors)
                      and isinstance(factors[i + 2], Quantity) and self.same(factors[i + 2], f.of)):
                    wrt, step = nxt.of, 3
                if wrt is not None and self.is_output(f.of):
                    target = self.quantity(wrt).expr
                    out.append(Value("vec", OutGrad(target), f))
                    i += step
                    continue
            out.append(self.value(f))
            i += 1
        return out

    def is_output(self, q: Quantity) -> bool:
        """z in \\nabla_{z_t}Div: the network's output, not a quantity of the cell."""
        if self.profile.output_of(q.name) is None:
            return False
        try:
            self.resolve(q)
        except FormulaNameError:
            return True
        return False

    def same(self, a: Quantity, b: Quantity) -> bool:
        return (a.name, a.label, a.time or 0) == (b.name, b.label, b.time or 0)

    def value(self, f) -> Value:
        if isinstance(f, Number):
            return Value("num", f.value, f)
        if isinstance(f, OnesNode):
            return Value("vec", Ones(("H",)), f)
        if isinstance(f, Quantity):
            return self.quantity(f)
        if isinstance(f, Group):
            # a group with weights but no gradient is an operator (the lecture's
            # ∇ ∘ (a W_hf + b W_hi)); a group holding a gradient is a vector
            if self.is_operator(f.expr):
                return Value("group", None, f)
            return Value("vec", self.sum(f.expr), f)
        if isinstance(f, Call):
            return Value("vec", self.call(f), f)
        if isinstance(f, Nabla):
            if not f.loss:
                raise self.shape_error(f, f"`{self.formula.source(f)}` needs Div after it, or an "
                                       "output: \\nabla_{z_t}\\mathrm{Div}\\,\\nabla_{h_t} z_t")
            return Value("vec", self.gradient(f), f)
        if isinstance(f, Jacobian):
            raise FormulaNameError(f"`{self.formula.source(f)}`: a Jacobian is only understood "
                                   "after the gradient of an output, as in "
                                   "\\nabla_{z_t}Div \\nabla_{h_t} z_t")
        if isinstance(f, Postfix):
            v = self.value(f.arg)
            return self.postfix(v, f)
        raise LstmsymError(f"cannot read `{self.formula.source(f)}`")  # pragma: no cover

    def postfix(self, v: Value, f: Postfix) -> Value:
        if f.power != 1:
            if v.kind != "vec":
                raise self.shape_error(f, "only vectors can be squared elementwise")
            v = Value("vec", had(*([v.expr] * f.power)), f)
        if f.transpose:
            if v.kind == "vec":
                v = Value("tvec", v.expr, f)
            elif v.kind == "mat":
                v = Value("mat", v.expr, f, not v.transpose)
            else:
                raise self.shape_error(f, "cannot transpose this group")
        return v

    def is_operator(self, s: Sum) -> bool:
        """Row convention: a group with weights and no gradient, (a W_hf + b W_hi), is a sum of
        Jacobians applied to the gradient before it. Column convention: only a group with a
        summand ending in a matrix is; (W_hn h_t + b_hn) is a vector."""
        if _has_gradient(s) or not self.has_matrix(s):
            return False
        if self.convention == "row":
            return True
        for t in s.terms:
            last = self.prepass(t.product.factors)[-1]
            node = last.arg if isinstance(last, Postfix) else last
            if isinstance(node, Quantity) and len(self.quantity(node).expr.shape) == 2:
                return True
        return False

    def has_matrix(self, s: Sum) -> bool:
        for t in s.terms:
            for f in self.prepass(t.product.factors):
                node = f.arg if isinstance(f, Postfix) else f
                if isinstance(node, Quantity):
                    e = self.quantity(node).expr
                    if len(e.shape) == 2:
                        return True
                elif isinstance(node, Group) and self.has_matrix(node.expr):
                    return True
        return False

    # --- leaves ------------------------------------------------------------------------------
    def quantity(self, q: Quantity) -> Value:
        sym = self.resolve(q)
        if q.prime:
            raise FormulaNameError(f"`{self.formula.source(q)}`: a prime on a name is not "
                                   "understood; write \\sigma'(.) or \\tanh'(.)")
        if len(sym.shape) == 2:
            return Value("mat", sym, q, q.transpose)
        e = had(*([sym] * q.power)) if q.power > 1 else sym
        if q.transpose:
            return Value("tvec", e, q)
        return Value("vec", e, q)

    def resolve(self, q: Quantity) -> Sym:
        name = q.name
        if name.startswith("delta:"):
            name = self.profile.delta_target(name[6:], self.cell)
        elif q.label:
            name = f"{name}_{q.label}"
        name = self.names.get(name, name)
        name = self.profile.alias(name, self.symbols)
        if name not in self.symbols or q.sup is not None:
            key = _key(q)
            name = self.names.get(key, self.by_latex.get(key, name))
        if name not in self.symbols:
            raise self.unknown(q, name)
        sym = self.symbols[name]
        if sym.role in ("param", "const"):
            return sym
        return sym.at(q.time if q.time is not None else 0)

    def unknown(self, q: Quantity, name: str) -> FormulaNameError:
        line, col = self.position(q)
        known = sorted(self.symbols)
        close = difflib.get_close_matches(name, known, n=len(known), cutoff=0.0)
        shown = ", ".join(close[:12])
        return FormulaNameError(f"line {line}, column {col}: unknown symbol "
                                f"`{self.formula.source(q)}` (read as {name!r}); cell "
                                f"{self.cell.name!r} knows, closest first: {shown}"
                                + (", …" if len(close) > 12 else "")
                                + " (map other names with --map yours=cell's)")

    def gradient(self, f: Nabla) -> Expr:
        of = f.of
        if self.is_output(of):
            raise FormulaNameError(f"`{self.formula.source(f)}` is the gradient at the output "
                                   f"{of.name}; write it as \\nabla_{{{of.name}_t}}Div "
                                   f"\\nabla_{{h_t}}{of.name}_t (or \\partial_{{h_t}}Div)")
        sym = self.resolve(of)
        if f.partial:
            return OutGrad(sym)
        return Grad(sym)

    def call(self, c: Call) -> Expr:
        fn = FUNCTIONS.get(c.fn) or ACTIVATIONS.get(c.fn)
        if fn is None:
            raise FormulaNameError(f"unknown function `{self.formula.source(c)}`; known: "
                                   + ", ".join(sorted(set(FUNCTIONS) | set(ACTIVATIONS))))
        if c.arg is None:
            ident = len(self.holes)
            e = Hole(fn, c.deriv, ident, ("H",), c.span)
            self.holes[ident] = e
        else:
            v = self.value(c.arg)
            if v.kind != "vec":
                raise self.shape_error(c, f"\\{c.fn} needs a vector argument")
            e = ActDeriv(fn, v.expr) if c.deriv else Act(fn, v.expr)
        return had(*([e] * c.power)) if c.power > 1 else e


def _has_gradient(node) -> bool:
    if isinstance(node, Nabla):
        return node.loss
    if isinstance(node, Sum):
        return any(_has_gradient(t.product) for t in node.terms)
    if isinstance(node, Product):
        return any(_has_gradient(f) for f in node.factors)
    if isinstance(node, Group):
        return _has_gradient(node.expr)
    if isinstance(node, Postfix):
        return _has_gradient(node.arg)
    return False


def _dims(shape) -> str:
    return "×".join(str(d) for d in shape)


def _key(q: Quantity) -> str:
    return q.name + (f"_{q.label}" if q.label else "") + (f"^{q.sup}" if q.sup else "")


def _cell_activations(cell) -> dict:
    """One-letter activations the cell uses, by their LaTeX (g, h of the 1997 LSTM)."""
    out = {}
    for eq in cell.equations:
        for n in eq.expr.walk():
            fn = getattr(n, "fn", None)
            if fn is not None and re.fullmatch(r"[A-Za-z]", fn.latex or ""):
                out[fn.latex] = fn
    return out


def _cell_symbols(cell) -> dict:
    out = {}
    for x in cell.inputs:
        out[x.name] = x
    for s in cell.states:
        out[s.name] = s
    for p in cell.params:
        out[p.name] = p
    for eq in cell.equations:
        out.setdefault(eq.target.name, eq.target)
    return out


def known_symbols(cell) -> list:
    return sorted(_cell_symbols(cell))


__all__ = ["parse", "Reader", "Claim", "Hole", "Formula", "FormulaSyntaxError",
           "FormulaNameError", "FormulaShapeError", "known_symbols"]
