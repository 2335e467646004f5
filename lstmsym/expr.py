"""Vector-level expressions: the one tree every part of lstmsym speaks.

A cell's equations, the backward equations derived from them, the LaTeX and NumPy printers and
the user-formula parser all use these nodes. A node is a frozen dataclass with a ``shape``: a
tuple of dimension names such as ``("H",)`` for a vector or ``("H", "I")`` for a matrix.

Primitives (DESIGN.md): affine map (``MatVec``), Hadamard product (``Had``), sum (``Add``,
``Scale``), elementwise activation (``Act``), plus the nodes the backward pass needs
(``ActDeriv`` for f'(a), ``Outer`` for parameter gradients, ``Grad`` for nabla_v Div) and the
block broadcast of the 1997 memory-cell blocks (``Repeat``/``BlockSum``).

Python operators build trees: ``W @ v`` is an affine map, ``a * b`` a Hadamard product,
``a + b``, ``a - b``, ``1 - a``, ``-a`` sums.

>>> from lstmsym.expr import Sym
>>> W = Sym("W", "param", ("H", "I")); x = Sym("x", "input", ("I",))
>>> (W @ x).shape
('H',)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator

from lstmsym.errors import CellError, ShapeError

ROLES = ("input", "state", "param", "var", "const")


class Expr:
    """Base class of every node; gives the operator syntax."""

    shape: tuple

    # --- operator syntax -------------------------------------------------------------------
    def __add__(self, other):
        return add(self, _lift(other, self))

    def __radd__(self, other):
        return add(_lift(other, self), self)

    def __sub__(self, other):
        return add(self, scale(-1, _lift(other, self)))

    def __rsub__(self, other):
        return add(_lift(other, self), scale(-1, self))

    def __neg__(self):
        return scale(-1, self)

    def __mul__(self, other):
        if not isinstance(other, Expr):
            return scale(_number(other), self)
        return had(self, other)

    def __rmul__(self, other):
        if not isinstance(other, Expr):
            return scale(_number(other), self)
        return had(other, self)

    def __matmul__(self, other):
        return MatVec(self, other)

    @property
    def T(self):
        return Transpose(self)

    def children(self) -> tuple:
        return ()

    def walk(self) -> Iterator["Expr"]:
        """Every node of the tree, parents before children."""
        yield self
        for c in self.children():
            yield from c.walk()

    def syms(self) -> set:
        return {n for n in self.walk() if isinstance(n, Sym)}


def _number(value) -> Fraction:
    """A constant coefficient: int, Fraction, or a float read as the decimal it prints as."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise CellError(f"cannot combine {type(value).__name__} {value!r} with a vector "
                         "expression (use another expression, an int, a float or a Fraction)")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CellError(f"constant {value!r} is not a finite number")
        return Fraction(repr(value))
    return Fraction(value)


def _lift(value, like: Expr) -> Expr:
    if isinstance(value, Expr):
        return value
    value = _number(value)
    if value == 0:
        return Zero(like.shape)
    return scale(value, Ones(like.shape))


# --- leaves -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=True)
class Sym(Expr):
    """A named quantity: an input, a state, a parameter or an intermediate of a cell.

    ``time`` is the offset from the current step t: -1 for t-1, 0 for t, +1 for t+1.
    ``latex`` optionally overrides the LaTeX name (without the time index).
    """

    name: str
    role: str
    shape: tuple
    time: int = 0
    latex: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r} for {self.name!r}")

    def at(self, time: int) -> "Sym":
        return Sym(self.name, self.role, self.shape, time, self.latex)

    @property
    def prev(self) -> "Sym":
        return self.at(self.time - 1)

    def __repr__(self):
        if self.role in ("param", "const"):
            return self.name
        return self.name + {-1: "[t-1]", 0: "[t]", 1: "[t+1]"}.get(self.time, f"[t{self.time:+d}]")


@dataclass(frozen=True)
class Grad(Expr):
    """nabla_{v} Div: the total derivative of the divergence with respect to the quantity v."""

    of: Sym

    @property
    def shape(self):
        return self.of.shape

    def __repr__(self):
        return f"d{self.of!r}"


@dataclass(frozen=True)
class OutGrad(Expr):
    """The part of nabla_{v} Div that arrives directly from the output at the same step."""

    of: Sym

    @property
    def shape(self):
        return self.of.shape

    def __repr__(self):
        return f"dout{self.of!r}"


@dataclass(frozen=True)
class Ones(Expr):
    shape: tuple

    def __repr__(self):
        return "1"


@dataclass(frozen=True)
class Zero(Expr):
    shape: tuple

    def __repr__(self):
        return "0"


# --- interior nodes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Add(Expr):
    args: tuple

    @property
    def shape(self):
        return self.args[0].shape

    def children(self):
        return self.args

    def __repr__(self):
        return "(" + " + ".join(map(repr, self.args)) + ")"


@dataclass(frozen=True)
class Scale(Expr):
    """c * a for a rational constant c."""

    coeff: Fraction
    arg: Expr

    @property
    def shape(self):
        return self.arg.shape

    def children(self):
        return (self.arg,)

    def __repr__(self):
        return f"{self.coeff}*{self.arg!r}"


@dataclass(frozen=True)
class Had(Expr):
    """Hadamard (elementwise) product of vectors of one shape."""

    args: tuple

    @property
    def shape(self):
        return self.args[0].shape

    def children(self):
        return self.args

    def __repr__(self):
        return "(" + " o ".join(map(repr, self.args)) + ")"


@dataclass(frozen=True)
class Transpose(Expr):
    arg: Expr

    @property
    def shape(self):
        return tuple(reversed(self.arg.shape))

    def children(self):
        return (self.arg,)

    def __matmul__(self, other):
        return MatVec(self.arg, other, transpose=True)

    def __repr__(self):
        return f"{self.arg!r}^T"


@dataclass(frozen=True)
class MatVec(Expr):
    """The affine map M v (or M^T v with ``transpose``); M is a matrix-shaped expression."""

    mat: Expr
    vec: Expr
    transpose: bool = False

    def __post_init__(self):
        if isinstance(self.mat, Transpose):
            object.__setattr__(self, "transpose", not self.transpose)
            object.__setattr__(self, "mat", self.mat.arg)
        if len(self.mat.shape) != 2 or len(self.vec.shape) != 1:
            raise ShapeError(f"{self.mat!r} @ {self.vec!r}: need a matrix times a vector, "
                             f"got shapes {self.mat.shape} and {self.vec.shape}")
        cols = self.mat.shape[0] if self.transpose else self.mat.shape[1]
        if cols != self.vec.shape[0]:
            m = f"{self.mat!r}^T" if self.transpose else repr(self.mat)
            shape = tuple(reversed(self.mat.shape)) if self.transpose else self.mat.shape
            raise ShapeError(f"{m} @ {self.vec!r}: a {shape[0]}x{shape[1]} matrix cannot "
                             f"multiply a vector of size {self.vec.shape[0]}")

    @property
    def shape(self):
        return (self.mat.shape[1],) if self.transpose else (self.mat.shape[0],)

    def children(self):
        return (self.mat, self.vec)

    def __repr__(self):
        return f"{self.mat!r}{'^T' if self.transpose else ''}@{self.vec!r}"


@dataclass(frozen=True)
class Outer(Expr):
    """u v^T: the gradient of a matrix in an affine map."""

    left: Expr
    right: Expr

    @property
    def shape(self):
        return (self.left.shape[0], self.right.shape[0])

    def children(self):
        return (self.left, self.right)

    def __repr__(self):
        return f"outer({self.left!r}, {self.right!r})"


@dataclass(frozen=True)
class Act(Expr):
    """Elementwise activation f(a)."""

    fn: "object"  # lstmsym.ops.Activation
    arg: Expr

    @property
    def shape(self):
        return self.arg.shape

    def children(self):
        return (self.arg,)

    def __repr__(self):
        return f"{self.fn.name}({self.arg!r})"


@dataclass(frozen=True)
class ActDeriv(Expr):
    """Elementwise derivative f'(a) of an activation, at the point a."""

    fn: "object"
    arg: Expr

    @property
    def shape(self):
        return self.arg.shape

    def children(self):
        return (self.arg,)

    def __repr__(self):
        return f"{self.fn.name}'({self.arg!r})"


@dataclass(frozen=True)
class Repeat(Expr):
    """Each entry of a vector of blocks repeated ``k`` times (a gate shared by k cells)."""

    arg: Expr
    k: int
    out_dim: str

    @property
    def shape(self):
        return (self.out_dim,)

    def children(self):
        return (self.arg,)

    def __repr__(self):
        return f"repeat({self.arg!r}, {self.k})"


@dataclass(frozen=True)
class BlockSum(Expr):
    """Sum of each run of ``k`` consecutive entries: the adjoint of ``Repeat``."""

    arg: Expr
    k: int
    out_dim: str

    @property
    def shape(self):
        return (self.out_dim,)

    def children(self):
        return (self.arg,)

    def __repr__(self):
        return f"blocksum({self.arg!r}, {self.k})"


# --- smart constructors: flatten, drop neutral elements, check shapes -----------------------------
def _check_same_shape(op: str, args) -> None:
    shapes = {a.shape for a in args}
    if len(shapes) > 1:
        desc = ", ".join(f"{a!r}: {a.shape}" for a in args)
        raise ShapeError(f"{op} of operands with different shapes ({desc})")


def add(*args: Expr) -> Expr:
    flat = []
    for a in args:
        if isinstance(a, Add):
            flat.extend(a.args)
        elif not isinstance(a, Zero):
            flat.append(a)
    _check_same_shape("sum", [a for a in args])
    if not flat:
        return Zero(args[0].shape)
    if len(flat) == 1:
        return flat[0]
    return Add(tuple(flat))


def scale(c, a: Expr) -> Expr:
    c = Fraction(c)
    if c == 0 or isinstance(a, Zero):
        return Zero(a.shape)
    if c == 1:
        return a
    if isinstance(a, Scale):
        return scale(c * a.coeff, a.arg)
    return Scale(c, a)


def had(*args: Expr) -> Expr:
    _check_same_shape("Hadamard product", args)
    coeff = Fraction(1)
    flat = []
    for a in args:
        if isinstance(a, Scale):
            coeff *= a.coeff
            a = a.arg
        if isinstance(a, Zero):
            return Zero(a.shape)
        if isinstance(a, Had):
            flat.extend(a.args)
        elif not isinstance(a, Ones):
            flat.append(a)
    if not flat:
        out = Ones(args[0].shape)
    elif len(flat) == 1:
        out = flat[0]
    else:
        out = Had(tuple(flat))
    return scale(coeff, out)


def shift(e: Expr, k: int) -> Expr:
    """The same expression k steps later (every time index plus k)."""
    if k == 0:
        return e
    if isinstance(e, Sym):
        return e if e.role in ("param", "const") else e.at(e.time + k)
    if isinstance(e, Grad):
        return Grad(shift(e.of, k))
    if isinstance(e, OutGrad):
        return OutGrad(shift(e.of, k))
    return map_children(e, lambda c: shift(c, k))


def map_children(e: Expr, fn) -> Expr:
    """Rebuild ``e`` with ``fn`` applied to each child (leaves are returned as they are)."""
    if isinstance(e, Add):
        return add(*[fn(a) for a in e.args])
    if isinstance(e, Had):
        return had(*[fn(a) for a in e.args])
    if isinstance(e, Scale):
        return scale(e.coeff, fn(e.arg))
    if isinstance(e, MatVec):
        return MatVec(fn(e.mat), fn(e.vec), e.transpose)
    if isinstance(e, Outer):
        return Outer(fn(e.left), fn(e.right))
    if isinstance(e, Act):
        return Act(e.fn, fn(e.arg))
    if isinstance(e, ActDeriv):
        return ActDeriv(e.fn, fn(e.arg))
    if isinstance(e, Transpose):
        return Transpose(fn(e.arg))
    if isinstance(e, Repeat):
        return Repeat(fn(e.arg), e.k, e.out_dim)
    if isinstance(e, BlockSum):
        return BlockSum(fn(e.arg), e.k, e.out_dim)
    return e


def substitute(e: Expr, mapping: dict) -> Expr:
    """Replace whole subtrees found as keys of ``mapping`` (Sym, Grad, OutGrad …)."""
    if e in mapping:
        return mapping[e]
    return map_children(e, lambda c: substitute(c, mapping))


def terms(e: Expr) -> list:
    """The summands of an expression (a single term if it is not a sum)."""
    if isinstance(e, Add):
        return list(e.args)
    if isinstance(e, Zero):
        return []
    return [e]
