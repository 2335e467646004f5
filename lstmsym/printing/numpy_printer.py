"""The elementwise NumPy printer: vector-level expressions -> NumPy source text.

Kernels are batch-major: a vector quantity of shape ``("H",)`` is an array ``(B, H)`` (one row per
sequence of the batch), so the affine map ``W v`` prints as ``v @ W.T`` and ``W^T g`` as ``g @ W``.
Leaves (quantities, gradients) print through a ``names`` function given by the caller, because
the same quantity is a local ``f`` inside a time step and a slice ``f_seq[lo:hi]`` at window level.

Activations print through ``ScalarNumPyPrinter``, a SymPy ``NumPyPrinter`` that knows lstmsym's
scalar primitives: ``Sigmoid`` becomes the kernel's overflow-free ``sigmoid`` (0.5 (1 + tanh(z/2))),
``ReLU`` ``np.maximum(z, 0)``. Derivatives of activations print through the stored output where
the activation allows it (sigma' = y (1 - y), tanh' = 1 - y^2), as the notes do.

>>> from lstmsym.expr import Sym
>>> from lstmsym.ops import sigmoid
>>> W = Sym("W", "param", ("H", "I")); x = Sym("x", "input", ("I",))
>>> NumpyPrinter().doprint(sigmoid(W @ x))
'sigmoid(x @ W.T)'
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import sympy
from sympy.printing.numpy import NumPyPrinter

from lstmsym.expr import (Act, BlockSum, Expr, Grad, Ones, OutGrad, Repeat, Scale, Sym, Zero)
from lstmsym.naming import code_name

_Z = sympy.Symbol("z")


class ScalarNumPyPrinter(NumPyPrinter):
    """SymPy scalar expressions (activations and their derivatives) as elementwise NumPy code."""

    def _module_format(self, fqn, register=True):
        return "np." + fqn[len("numpy."):] if fqn.startswith("numpy.") else fqn

    def _print_Sigmoid(self, e):
        return "sigmoid(%s)" % self._print(e.args[0])

    def _print_ReLU(self, e):
        return "np.maximum(%s, 0)" % self._print(e.args[0])

    def _print_Heaviside(self, e):
        # H(z) with H(0) = 0: the derivative of ReLU
        return "np.heaviside(%s, 0)" % self._print(e.args[0])

    def _print_Max(self, e):
        args = [self._print(a) for a in e.args]
        out = args[0]
        for a in args[1:]:
            out = "np.maximum(%s, %s)" % (out, a)
        return out


_SCALAR = ScalarNumPyPrinter({"fully_qualified_modules": True})


def scalar_code(expr, **arguments) -> str:
    """Print a SymPy expression with its symbols replaced by code strings (``z="f_bar"``)."""
    subs = {sympy.Symbol(k): sympy.Symbol(v) for k, v in arguments.items()}
    return _SCALAR.doprint(expr.xreplace(subs))


def activation_code(fn, arg: str) -> str:
    """f(arg) for an ``lstmsym.ops.Activation``."""
    if fn.name == "sigmoid":
        return f"sigmoid({arg})"
    if fn.name == "tanh":
        return f"np.tanh({arg})"
    if fn.name == "relu":
        return f"np.maximum({arg}, 0)"
    return scalar_code(fn.scalar(_Z), z=arg)


def derivative_code(fn, arg: str | None = None, out: str | None = None) -> str:
    """f'(z) through the stored output ``out`` when the activation allows it, else at ``arg``."""
    if out is not None and fn.deriv_output is not None:
        y = sympy.Symbol("y")
        return scalar_code(fn.deriv_output(y), y=out)
    if arg is None:
        raise ValueError(f"the derivative of {fn.name} needs its argument")
    if fn.name == "relu":
        return f"np.heaviside({arg}, 0)"
    return scalar_code(fn.deriv(_Z), z=arg)


# --- nodes the kernel planner adds to the vector tree ----------------------------------------------
@dataclass(frozen=True)
class ActDerivOut(Expr):
    """f'(a) written through the stored output y = f(a) (sigma' = y(1-y), tanh' = 1-y^2)."""

    fn: object
    out: Expr

    @property
    def shape(self):
        return self.out.shape

    def children(self):
        return (self.out,)

    def __repr__(self):
        return f"{self.fn.name}'(via {self.out!r})"


@dataclass(frozen=True)
class Code(Expr):
    """A leaf already written as code (a buffer, a slice)."""

    code: str
    shape: tuple

    def __repr__(self):
        return self.code


# --- the printer -------------------------------------------------------------------------------
_ATOMIC = (Sym, Grad, OutGrad, Code, Ones, Zero)


class NumpyPrinter:
    """Print vector-level expressions as batch-major NumPy code.

    ``names`` maps a leaf (``Sym``, ``Grad``, ``OutGrad``) to its code; the default is
    ``lstmsym.naming.code_name``. ``window`` prints parameter gradients summed over time and
    batch (leaves are (T, B, n) slices) instead of over the batch only.
    """

    def __init__(self, names=None, window: bool = False):
        self.names = names or code_name
        self.window = window

    def doprint(self, e) -> str:
        method = getattr(self, "_print_" + type(e).__name__, None)
        if method is None:
            raise TypeError(f"NumpyPrinter cannot print {type(e).__name__} ({e!r})")
        return method(e)

    def _paren(self, e) -> str:
        s = self.doprint(e)
        return s if isinstance(e, _ATOMIC + (Act, Repeat, BlockSum)) or _is_call(s) \
            else f"({s})"

    # ----- leaves -----
    def _print_Sym(self, e):
        return self.names(e)

    _print_Grad = _print_Sym
    _print_OutGrad = _print_Sym

    def _print_Code(self, e):
        return e.code

    def _print_Ones(self, e):
        return "1.0"

    def _print_Zero(self, e):
        return "0.0"

    # ----- sums and products -----
    def _print_Add(self, e):
        out = self.doprint(e.args[0])
        for a in e.args[1:]:
            if isinstance(a, Scale) and a.coeff < 0:
                out += " - " + self.doprint(_negated(a))
            else:
                out += " + " + self.doprint(a)
        return out

    def _print_Scale(self, e):
        c = e.coeff
        if c == -1:
            return "-" + self._paren(e.arg)
        return f"{_number(c)} * {self._paren(e.arg)}"

    def _print_Had(self, e):
        return " * ".join(self._paren(a) for a in e.args)

    def _print_MatVec(self, e):
        m = self.doprint(e.mat)
        return f"{self._paren(e.vec)} @ {m}" if e.transpose else f"{self._paren(e.vec)} @ {m}.T"

    def _print_Product(self, e):
        return f"{e.left} @ {e.right}"

    def _print_Outer(self, e):
        left, right = self.doprint(e.left), self.doprint(e.right)
        if self.window:
            return f"outer_sum({left}, {right})"
        return f"{self._paren(e.left)}.T @ {self._paren(e.right)}"

    # ----- elementwise functions -----
    def _print_Act(self, e):
        return activation_code(e.fn, self.doprint(e.arg))

    def _print_ActDeriv(self, e):
        return derivative_code(e.fn, arg=self.doprint(e.arg))

    def _print_ActDerivOut(self, e):
        return derivative_code(e.fn, out=self._paren(e.out))

    # ----- memory-cell blocks -----
    def _print_Repeat(self, e):
        return f"np.repeat({self.doprint(e.arg)}, {e.k}, axis=-1)"

    def _print_BlockSum(self, e):
        return f"block_sum({self.doprint(e.arg)}, {e.k})"


def _is_call(s: str) -> bool:
    """Whether s is one call f(...) (needs no parentheses)."""
    head, sep, rest = s.partition("(")
    if not sep or not head.replace(".", "").replace("_", "").isalnum() or not s.endswith(")"):
        return False
    depth = 0
    for k, ch in enumerate(s):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and k < len(s) - 1 and k >= len(head):
            return False
    return True


def _negated(e: Scale):
    from lstmsym.expr import scale
    return scale(-e.coeff, e.arg)


def _number(c: Fraction) -> str:
    if c.denominator == 1:
        return f"{c.numerator}.0" if abs(c.numerator) < 10**15 else str(c.numerator)
    return f"({c.numerator} / {c.denominator})"


__all__ = ["NumpyPrinter", "ScalarNumPyPrinter", "ActDerivOut", "Code",
           "activation_code", "derivative_code", "scalar_code"]


# ----- in place: an expression as ufunc calls writing into preallocated buffers -----------------------
@dataclass(frozen=True)
class Product(Expr):
    """A matrix product ``left @ right`` of code operands (a stacked GEMM)."""

    left: str
    right: str
    shape: tuple

    def __repr__(self):
        return f"{self.left} @ {self.right}"


class ScratchPool:
    """Named (B, n) work buffers, reused: ``take(dim)`` / ``give(name)``; ``allocations()``."""

    def __init__(self, prefix: str = "work"):
        self.prefix, self.free, self.made = prefix, {}, []

    def take(self, dim: str) -> str:
        if self.free.get(dim):
            return self.free[dim].pop()
        name = f"{self.prefix}_{dim}_{sum(1 for d, _ in self.made if d == dim)}"
        self.made.append((dim, name))
        return name

    def give(self, dim: str, name: str) -> None:
        self.free.setdefault(dim, []).append(name)


class UfuncEmitter:
    """Print ``dest = expr`` as NumPy calls with ``out=dest``: no temporaries but work buffers.

    ``emit(expr, dest)`` returns code lines. Sums and products fold into ``dest`` one operand at
    a time; activations run in place (``sigmoid(dest, out=dest)``); sigma' and tanh' through the
    stored output take two calls. Anything else falls back to ``dest[...] = <expression>``.
    """

    def __init__(self, printer: NumpyPrinter, pool: ScratchPool):
        self.pr, self.pool = printer, pool

    def atom(self, e):
        """Code of e if it needs no computation, else None."""
        if isinstance(e, (Sym, Grad, OutGrad, Code)):
            return self.pr.doprint(e)
        if isinstance(e, Ones):
            return "1.0"
        if isinstance(e, Scale) and isinstance(e.arg, Ones):
            return _number(e.coeff)
        return None

    def emit(self, e, dest: str) -> list:
        if any(self.pr.doprint(n) == dest for n in e.walk()
               if isinstance(n, (Sym, Grad, OutGrad, Code))):   # dest is read: go through work
            tmp = self.pool.take(e.shape[0])
            lines = self._emit(e, tmp) + [f"np.copyto({dest}, {tmp})"]
            self.pool.give(e.shape[0], tmp)
            return lines
        return self._emit(e, dest)

    def _operand(self, e, lines, held):
        a = self.atom(e)
        if a is not None:
            return a
        tmp = self.pool.take(e.shape[0])
        held.append((e.shape[0], tmp))
        lines += self._emit(e, tmp)
        return tmp

    def _release(self, held):
        for dim, name in held:
            self.pool.give(dim, name)

    def _emit(self, e, dest):
        atom = self.atom(e)
        if atom is not None:
            return [f"np.copyto({dest}, {atom})"]
        method = getattr(self, "_emit_" + type(e).__name__, None)
        if method is None:
            return [f"{dest}[...] = {self.pr.doprint(e)}"]
        return method(e, dest)

    def _emit_Add(self, e, dest):
        pos = [a for a in e.args if not (isinstance(a, Scale) and a.coeff < 0)]
        neg = [_negated(a) for a in e.args if isinstance(a, Scale) and a.coeff < 0]
        lines, held = [], []
        pos.sort(key=lambda a: self.atom(a) is not None)    # computed terms first, into dest
        if pos and self.atom(pos[0]) is None:
            lines += self._emit(pos[0], dest)
            rest = pos[1:]
        elif len(pos) >= 2:
            lines.append(f"np.add({self.atom(pos[0])}, {self.atom(pos[1])}, out={dest})")
            rest = pos[2:]
        elif pos:
            b = self._operand(neg[0], lines, held)
            lines.append(f"np.subtract({self.atom(pos[0])}, {b}, out={dest})")
            rest, neg = [], neg[1:]
        else:
            lines += self._emit(neg[0], dest)
            lines.append(f"np.negative({dest}, out={dest})")
            rest, neg = [], neg[1:]
        for a in rest:
            lines.append(f"np.add({dest}, {self._operand(a, lines, held)}, out={dest})")
        for a in neg:
            lines.append(f"np.subtract({dest}, {self._operand(a, lines, held)}, out={dest})")
        self._release(held)
        return lines

    def _emit_Had(self, e, dest):
        args = sorted(e.args, key=lambda a: self.atom(a) is not None)
        lines, held = [], []
        if self.atom(args[0]) is None:
            lines += self._emit(args[0], dest)
            rest = args[1:]
        else:
            lines.append(f"np.multiply({self.atom(args[0])}, "
                         f"{self._operand(args[1], lines, held)}, out={dest})")
            rest = args[2:]
        for a in rest:
            lines.append(f"np.multiply({dest}, {self._operand(a, lines, held)}, out={dest})")
        self._release(held)
        return lines

    def _emit_Scale(self, e, dest):
        lines, held = [], []
        a = self._operand(e.arg, lines, held) if self.atom(e.arg) is not None else None
        if a is None:
            lines += self._emit(e.arg, dest)
            a = dest
        lines.append(f"np.multiply({a}, {_number(e.coeff)}, out={dest})")
        self._release(held)
        return lines

    def _emit_MatVec(self, e, dest):
        lines, held = [], []
        v = self._operand(e.vec, lines, held)
        m = self.pr.doprint(e.mat)
        lines.append(f"np.matmul({v}, {m if e.transpose else m + '.T'}, out={dest})")
        self._release(held)
        return lines

    def _emit_Product(self, e, dest):
        return [f"np.matmul({e.left}, {e.right}, out={dest})"]

    def _emit_Act(self, e, dest):
        lines = []
        a = self.atom(e.arg)
        if a is None:
            lines += self._emit(e.arg, dest)
            a = dest
        inplace = {"sigmoid": "sigmoid", "tanh": "np.tanh"}
        if e.fn.name in inplace:
            return lines + [f"{inplace[e.fn.name]}({a}, out={dest})"]
        if e.fn.name == "relu":
            return lines + [f"np.maximum({a}, 0, out={dest})"]
        affine = _affine_in_primitive(e.fn.scalar(_Z))
        if affine is not None:      # c1 P(z) + c0 with P = sigmoid or tanh (g, h of 1997)
            prim, c1, c0 = affine
            lines.append(f"{inplace[prim]}({a}, out={dest})")
            if c1 != 1:
                lines.append(f"np.multiply({dest}, {_float(c1)}, out={dest})")
            if c0 != 0:
                lines.append(f"np.add({dest}, {_float(c0)}, out={dest})")
            return lines
        return lines + [f"{dest}[...] = {activation_code(e.fn, a)}"]

    def _emit_ActDerivOut(self, e, dest):
        y = self.atom(e.out)
        if y is not None and e.fn.name == "sigmoid":       # y (1 - y)
            return [f"np.subtract(1.0, {y}, out={dest})", f"np.multiply({dest}, {y}, out={dest})"]
        if y is not None and e.fn.name == "tanh":          # 1 - y^2
            return [f"np.multiply({y}, {y}, out={dest})", f"np.subtract(1.0, {dest}, out={dest})"]
        coeffs = _polynomial(e.fn.deriv_output(sympy.Symbol("y"))) if y is not None else None
        if not coeffs:
            return [f"{dest}[...] = {self.pr.doprint(e)}"]
        # Horner: (((c_n y + c_{n-1}) y + ...) y + c_0)
        lines = [f"np.multiply({y}, {_float(coeffs[0])}, out={dest})"]
        for c in coeffs[1:-1]:
            if c != 0:
                lines.append(f"np.add({dest}, {_float(c)}, out={dest})")
            lines.append(f"np.multiply({dest}, {y}, out={dest})")
        if coeffs[-1] != 0:
            lines.append(f"np.add({dest}, {_float(coeffs[-1])}, out={dest})")
        return lines

    def _emit_ActDeriv(self, e, dest):
        a = self.atom(e.arg)
        if a is not None and e.fn.name == "relu":
            return [f"np.heaviside({a}, 0, out={dest})"]
        return [f"{dest}[...] = {self.pr.doprint(e)}"]

    def _emit_Repeat(self, e, dest):
        # each block entry broadcast to its k cells, written into dest's blocks
        lines, held = [], []
        a = self._operand(e.arg, lines, held)
        lines.append(f"np.copyto(blocks({dest}, {e.k}), {a}[:, :, None])")
        self._release(held)
        return lines

    def _emit_BlockSum(self, e, dest):
        lines, held = [], []
        a = self._operand(e.arg, lines, held)
        lines.append(f"np.sum(blocks({a}, {e.k}), axis=-1, out={dest})")
        self._release(held)
        return lines


def _float(c) -> str:
    return repr(float(c))


def _affine_in_primitive(expr):
    """(primitive, c1, c0) if expr = c1 P(z) + c0 with P sigmoid or tanh, else None."""
    from lstmsym.ops import Sigmoid
    for prim, fn in (("sigmoid", Sigmoid), ("tanh", sympy.tanh)):
        p = sympy.Dummy("p")
        e = sympy.expand(expr.subs(fn(_Z), p))
        if e.has(_Z) or not e.has(p):
            continue
        poly = sympy.Poly(e, p)
        if poly.degree() == 1 and all(c.is_number for c in poly.all_coeffs()):
            c1, c0 = poly.all_coeffs()
            return prim, c1, c0
    return None


def _polynomial(expr):
    """Coefficients (highest first) if expr is a polynomial in y with numeric coefficients."""
    y = sympy.Symbol("y")
    try:
        poly = sympy.Poly(sympy.expand(expr), y)
    except sympy.PolynomialError:
        return None
    coeffs = poly.all_coeffs()
    if len(coeffs) < 2 or not all(c.is_number for c in coeffs):
        return None
    return coeffs


__all__ += ["Product", "ScratchPool", "UfuncEmitter"]
