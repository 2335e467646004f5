"""Sums of products: the normal form in which the judge compares a claimed and a derived gradient.

``expand(e)`` multiplies out a vector expression into terms ``coeff * (f1 ∘ f2 ∘ …)``; a factor
is an atom (a state, gate, gradient, weight, σ(a), σ'(a)) or an affine map ``W (inner term)``
(row- and column-vector writings give the same tree once read, so the convention is gone here).
Like terms are combined; Hadamard factors are sorted, so order does not matter; σ(a) of a gate's
pre-activation is the gate (σ(\\bar f) ≡ f). ``contract`` rewrites σ(a)∘(1−σ(a)) as σ'(a) and
1−tanh²(a) as tanh'(a) before expansion, so either writing gives the same factor.

Memory-cell blocks: a repetition distributes over sums and Hadamard products, so
``repeat(a ∘ b)`` is the factors ``repeat(a), repeat(b)``; a block sum takes the repeated
factors out (``blocksum(repeat(a) ∘ u) = a ∘ blocksum(u)``) and keeps the rest inside, as an
affine map keeps its vector.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from fractions import Fraction

from lstmsym.errors import LstmsymError
from lstmsym.expr import (Act, ActDeriv, Add, BlockSum, Expr, Grad, Had, MatVec, Ones, OutGrad,
                          Outer, Repeat, Scale, Sym, Zero, had, map_children, scale, shift)
from lstmsym.parsing.interpret import Hole


class Normaliser:
    """Expansion into canonical terms for one cell (it knows which σ(a) is which gate)."""

    def __init__(self, cell):
        self.cell = cell
        self.gate_of = {}       # (fn name, pre-activation name) -> gate name
        for eq in cell.equations:
            if isinstance(eq.expr, Act) and isinstance(eq.expr.arg, Sym):
                self.gate_of[(eq.expr.fn.name, eq.expr.arg.name)] = eq.target.name
        self._known = None

    # --- σ(1-σ) and 1-tanh² -------------------------------------------------------------------
    def activation_of(self, e):
        """(fn, point) if e is fn(point) or a gate/intermediate defined as fn(point)."""
        if isinstance(e, Act):
            return e.fn, e.arg
        if isinstance(e, Sym) and e.role == "var":
            try:
                eq = self.cell.equation(e.name)
            except KeyError:
                return None
            if isinstance(eq.expr, Act) and isinstance(eq.expr.arg, Sym):
                return eq.expr.fn, shift(eq.expr.arg, e.time)
        if isinstance(e, Hole) and not e.deriv:
            return e.fn, e      # a placeholder sigma(.) stands for itself
        return None

    def contract(self, e: Expr) -> Expr:
        e = map_children(e, self.contract)
        if isinstance(e, Add):
            d = self._one_minus_square(e)
            if d is not None:
                return d
        if isinstance(e, Had):
            args = list(e.args)
            for i, a in enumerate(args):
                x = self._one_minus(a)
                if x is None:
                    continue
                for j, b in enumerate(args):
                    if j != i and self._same_point(b, x):
                        fb = self.activation_of(b)
                        if fb and fb[0].name == "sigmoid":
                            rest = [c for k, c in enumerate(args) if k not in (i, j)]
                            return had(self._deriv(fb), *rest) if rest else self._deriv(fb)
        return e

    def _deriv(self, fp):
        fn, point = fp
        if isinstance(point, Hole):     # sigma(.) -> sigma'(.), the same placeholder
            return replace(point, deriv=True)
        return ActDeriv(fn, point)

    def _one_minus(self, a):
        """x if a is 1 - x, else None."""
        if isinstance(a, Add) and len(a.args) == 2:
            one, neg = a.args
            if isinstance(neg, Ones):
                one, neg = neg, one
            if isinstance(one, Ones) and isinstance(neg, Scale) and neg.coeff == -1:
                return neg.arg
        return None

    def _same_point(self, b, x) -> bool:
        fb, fx = self.activation_of(b), self.activation_of(x)
        if not fb or not fx or fb[0].name != fx[0].name:
            return False
        pb, px = fb[1], fx[1]
        if isinstance(pb, Hole) and isinstance(px, Hole):
            return True        # sigma(.)(1 - sigma(.)): one placeholder point
        return pb == px

    def _one_minus_square(self, e):
        x = self._one_minus(e)
        if isinstance(x, Had) and len(x.args) == 2:
            a, b = x.args
            fa = self.activation_of(a)
            if fa and fa[0].name == "tanh" and self._same_point(a, b):
                return self._deriv(fa)
        return None

    # --- expansion --------------------------------------------------------------------------
    def expand(self, e: Expr) -> dict:
        """{factors (sorted tuple): coeff} with like terms combined and zeros dropped."""
        out = {}
        for c, fs in self._expand(e):
            key = _sorted(fs)
            out[key] = out.get(key, Fraction(0)) + c
        return {k: c for k, c in out.items() if c != 0}

    def _expand(self, e):
        if isinstance(e, (Sym, Grad, OutGrad, Hole)):
            return [(Fraction(1), (e,))]
        if isinstance(e, Ones):
            return [(Fraction(1), ())]
        if isinstance(e, Zero):
            return []
        if isinstance(e, Add):
            return [t for a in e.args for t in self._expand(a)]
        if isinstance(e, Scale):
            return [(e.coeff * c, fs) for c, fs in self._expand(e.arg)]
        if isinstance(e, Had):
            acc = [(Fraction(1), ())]
            for a in e.args:
                acc = [(c1 * c2, f1 + f2) for c1, f1 in acc for c2, f2 in self._expand(a)]
            return acc
        if isinstance(e, MatVec):
            mats = self._expand(e.mat)
            out = []
            for cm, fm in mats:
                if len(fm) != 1:
                    raise LstmsymError(f"cannot compare a product of matrices: {e!r}")
                for c, fs in self._expand(e.vec):
                    out.append((cm * c, (MatVec(fm[0], product(_sorted(fs), e.vec.shape),
                                                e.transpose),)))
            return out
        if isinstance(e, Outer):
            return [(c1 * c2, (Outer(product(_sorted(f1), e.left.shape),
                                   product(_sorted(f2), e.right.shape)),))
                    for c1, f1 in self._expand(e.left) for c2, f2 in self._expand(e.right)]
        if isinstance(e, Act):
            point = self.point(e.arg)
            gate = self.gate_of.get((e.fn.name, getattr(point, "name", None)))
            if gate is not None and isinstance(point, Sym):
                return [(Fraction(1), (self.cell.equation(gate).target.at(point.time),))]
            return [(Fraction(1), (Act(e.fn, point),))]
        if isinstance(e, ActDeriv):
            return [(Fraction(1), (ActDeriv(e.fn, self.point(e.arg)),))]
        if isinstance(e, Repeat):
            return [(c, tuple(Repeat(f, e.k, e.out_dim) for f in fs))
                    for c, fs in self._expand(e.arg)]
        if isinstance(e, BlockSum):
            return [self._block_sum(c, fs, e) for c, fs in self._expand(e.arg)]
        raise LstmsymError(f"cannot expand {type(e).__name__} {e!r}")

    @staticmethod
    def _block_sum(c, fs, e: BlockSum):
        """blocksum(repeat(a) ∘ u) = a ∘ blocksum(u); blocksum(1) = k·1."""
        out = tuple(f.arg for f in fs if isinstance(f, Repeat) and f.k == e.k)
        inside = [f for f in fs if not (isinstance(f, Repeat) and f.k == e.k)]
        if not inside:
            return c * e.k, out
        return c, out + (BlockSum(product(_sorted(inside), e.arg.shape), e.k, e.out_dim),)

    def point(self, a: Expr) -> Expr:
        """The canonical point of an activation: a pre-activation's name when the sum is one."""
        if isinstance(a, Sym):
            return a
        key = frozenset(self.expand(a).items())
        known = self.known_points()
        if key in known:
            return known[key]
        return rebuild(self.expand(a), a.shape)

    def known_points(self) -> dict:
        if self._known is None:
            self._known = {}
            for eq in self.cell.equations:
                for tau in (-1, 0, 1):
                    try:
                        k = frozenset(self.expand(shift(eq.expr, tau)).items())
                    except LstmsymError:
                        continue
                    self._known.setdefault(k, eq.target.at(tau))
        return self._known


def factor_order(f):
    """Gradients first, then quantities, weights last: the order the notes write a term in."""
    rank = 0 if isinstance(f, (Grad, OutGrad)) else 2 if isinstance(f, Sym) and f.role == "param" \
        else 1
    return (rank, repr(f))


def _sorted(factors) -> tuple:
    return tuple(sorted(factors, key=factor_order))


def product(factors, shape) -> Expr:
    return had(*factors) if factors else Ones(shape)


def rebuild(terms: dict, shape) -> Expr:
    """An expression from expanded terms, in a stable order."""
    from lstmsym.expr import add
    parts = [scale(c, product(fs, shape)) for fs, c in sorted(terms.items(), key=repr)]
    return add(Zero(shape), *parts)


def term_expr(factors, coeff, shape) -> Expr:
    return scale(coeff, product(factors, shape))


def tokens(factors) -> Counter:
    """The multiset of factors of a term, affine maps as (matrix, transposed) plus their inside,
    repetitions and block sums as ("repeat"|"blocksum", k) plus their inside."""
    out = Counter()
    for f in factors:
        if isinstance(f, MatVec):
            out[("mat", f.mat, f.transpose)] += 1
            inner = f.vec.args if isinstance(f.vec, Had) else (() if isinstance(f.vec, Ones)
                                                              else (f.vec,))
            out.update(tokens(inner))
        elif isinstance(f, Outer):
            for side in (f.left, f.right):
                out.update(tokens(side.args if isinstance(side, Had) else (side,)))
            out[("outer",)] += 1
        elif isinstance(f, Repeat):
            out[("repeat", f.k)] += 1
            out.update(tokens((f.arg,)))
        elif isinstance(f, BlockSum):
            out[("blocksum", f.k)] += 1
            inner = f.arg.args if isinstance(f.arg, Had) else (() if isinstance(f.arg, Ones)
                                                              else (f.arg,))
            out.update(tokens(inner))
        else:
            out[f] += 1
    return out


__all__ = ["Normaliser", "tokens", "rebuild", "term_expr", "product"]
