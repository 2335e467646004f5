"""Stage 2 of reading a formula: the formula tree (reader.py) -> lstmsym expressions.

Names are resolved through the notation profile (lstmsym.verification.profiles), the --map
renames and the cell's own printed names (y^{c}, s_c, \\tilde{h} read back as the cell's
quantities). Products are read as the profile's convention says: in a product a vector acts as
a diagonal matrix, and the chain is applied to the gradient at its left (row-vector convention:
``∇ ∘ a W`` is ``Wᵀ(∇ ∘ a)``) or at its right (column convention: ``Wᵀ(∇ ∘ a)`` as written).
Placeholders such as ``\\sigma'(.)`` become ``Hole`` nodes that the judge resolves.

Memory-cell blocks (cells whose gates are shared by blocks of k cells, lstm1997-blocks): the
printer's Kronecker notation reads back, ``v \\otimes \\mathbf{1}_{k}`` as ``Repeat(v, k)``
and ``(I \\otimes \\mathbf{1}_{k}^{\\top}) u`` as ``BlockSum(u, k)``; k must be the cell's
block size.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction

from lstmsym.errors import LstmsymError, ShapeError
from lstmsym.expr import (Act, ActDeriv, Expr, Grad, MatVec, Ones, OutGrad, Outer, Scale, Sym,
                          add, had, scale)
from lstmsym.ops import ACTIVATIONS, relu, sigmoid, tanh
from lstmsym.parsing.blocks import BlockReading, lone_kron
from lstmsym.parsing.reader import (Call, Formula, FormulaNameError, FormulaShapeError,
                                    FormulaSyntaxError, Group, Jacobian, Kron, Nabla, Number,
                                    OnesNode, Postfix, Product, Quantity, Sum, Term, _paren_time,
                                    line_column, parse)
from lstmsym.parsing.reader import dims_text as _dims

FUNCTIONS = {"sigma": sigmoid, "sigm": sigmoid, "sigmoid": sigmoid, "tanh": tanh,
             "ReLU": relu, "relu": relu}


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


class Reader(BlockReading):
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
        plain = self.profile.alias(self.names.get(text.strip(), text.strip()), self.symbols)
        if plain in self.symbols:       # the cell's own name: f_bar, C_tilde, W_hf
            sym = self.symbols[plain]
            return sym if sym.role in ("param", "const") else sym.at(0)
        f = parse(text)
        self.formula = f
        factors = f.rhs.terms[0].product.factors if len(f.rhs.terms) == 1 else []
        factors = self.prepass(factors)     # s_c(t-1): a time in parentheses
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
        es = _fit([self.term(t) for t in s.terms])
        return add(*es) if len(es) > 1 else es[0]

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
        return line_column(self.formula.text, node.span[0])

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
                elif v.kind == "tvec" and outer_left is None:
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
            # u v^T (column) and v^T u (row) are both the gradient of W in W v: same layout as W
            acc = Outer(acc, outer_left)
        return scale(coeff, acc)

    def apply(self, acc: Expr, v: Value, term) -> Expr:
        if v.kind == "vec":
            # a placeholder such as \\sigma'(.) has the size of what it multiplies (G or H)
            if isinstance(acc, Hole) and acc.shape != v.expr.shape:
                acc = self.reshape_hole(acc, v.expr.shape)
            if isinstance(v.expr, Hole) and v.expr.shape != acc.shape:
                v = Value("vec", self.reshape_hole(v.expr, acc.shape), v.node)
            if v.expr.shape != acc.shape:
                raise self.shape_error(term, f"`{self.formula.source(v.node)}` has size "
                                       f"{_dims(v.expr.shape)} but is multiplied elementwise "
                                       f"with a vector of size {_dims(acc.shape)}"
                                       + self.block_hint(v, acc))
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
        if v.kind == "block":
            return self.apply_block(acc, v, term)
        raise self.shape_error(term, f"`{self.formula.source(v.node)}` (a transposed vector) "
                               "can only stand at the end of an outer product")

    def reshape_hole(self, hole: Hole, shape) -> Hole:
        new = replace(hole, shape=shape)
        self.holes[hole.ident] = new
        return new

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
        """s_c(t+1): a time in parentheses; h'(s_c(t)): a one-letter activation of the cell
        (also before \\otimes, which took the parenthesis alone: s_c(t) \\otimes 1_k)."""
        out, i = [], 0
        while i < len(factors):
            f = factors[i]
            nxt = factors[i + 1] if i + 1 < len(factors) else None
            merged = self.merge(f, nxt)
            if merged is None and isinstance(nxt, Kron):
                left = self.merge(f, nxt.left)
                if left is not None:
                    merged = Kron((f.span[0], nxt.span[1]), left, nxt.right)
            if merged is not None:
                out.append(merged)
                i += 2
                continue
            out.append(f)
            i += 1
        return out

    def merge(self, f, nxt):
        """``f`` and the group ``nxt`` after it as one factor, or None."""
        if isinstance(f, Quantity) and f.time is None and isinstance(nxt, Group):
            t = _paren_time(nxt)
            if t is not None:
                return replace(f, time=t, span=(f.span[0], nxt.span[1]))
            fn = self.activations.get(f.name)
            if fn is not None and f.label is None and f.sup is None:
                return Call((f.span[0], nxt.span[1]), fn.name, f.prime, 1, nxt)
        return None

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
            if f.size is not None:
                raise FormulaSyntaxError(self.located(f, f"`{self.formula.source(f)}`: a "
                                         "subscript on \\mathbf{1} is only read after "
                                         "\\otimes, as in v \\otimes \\mathbf{1}_{2}"))
            return Value("vec", Ones(("H",)), f)
        if isinstance(f, Quantity):
            return self.quantity(f)
        if isinstance(f, Kron):
            return self.kron(f)
        if isinstance(f, Group) and lone_kron(f.expr) is not None:
            return self.kron(lone_kron(f.expr))      # (I \otimes 1_k^T): a matrix
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
            elif v.kind in ("mat", "block"):
                v = Value(v.kind, v.expr, f, not v.transpose)
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


def _fit(es: list) -> list:
    """The 1 in (1 - y) has the size of y (G for a gate of the blocks, not only H)."""
    def const(e):
        return isinstance(e, Ones) or (isinstance(e, Scale) and isinstance(e.arg, Ones))
    shapes = {e.shape for e in es if not const(e)}
    if len(shapes) != 1:
        return es
    shape = shapes.pop()
    return [scale(e.coeff if isinstance(e, Scale) else 1, Ones(shape)) if const(e) else e
            for e in es]


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


__all__ = ["Reader", "Claim", "Hole", "known_symbols"]
