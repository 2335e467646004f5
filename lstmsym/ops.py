"""Scalar primitives: the activations a cell may use, as SymPy functions with known derivatives.

Each ``Activation`` carries
- ``scalar(z)``: the SymPy expression f(z) used by the symbolic proof,
- ``deriv(z)``: f'(z) as a SymPy expression in z (by SymPy's own ``diff`` unless given),
- ``deriv_output(y)``: f'(z) written through the stored output y = f(z), as the notes and cheap
  kernels do (sigma' = y(1-y), tanh' = 1-y^2), or ``None`` when f' needs z itself (ReLU).

``Sigmoid`` and ``ReLU`` are SymPy ``Function`` subclasses with ``fdiff`` and a rewrite to
elementary functions, so a test can prove our derivative equals SymPy's ``diff`` of the rewrite.

>>> import sympy
>>> z = sympy.Symbol("z")
>>> sympy.diff(Sigmoid(z), z)
(1 - Sigmoid(z))*Sigmoid(z)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import sympy

from lstmsym.expr import Act, Expr


class Sigmoid(sympy.Function):
    """The logistic function 1/(1+exp(-z))."""

    def fdiff(self, argindex=1):
        s = Sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return 1 / (1 + sympy.exp(-z))

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)

    def _latex(self, printer):
        return r"\sigma\left(%s\right)" % printer._print(self.args[0])


class ReLU(sympy.Function):
    """max(0, z); its derivative is the Heaviside step (taken as 0 at z = 0)."""

    def fdiff(self, argindex=1):
        return sympy.Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Max(self, z, **kwargs):
        return sympy.Max(0, z)

    def _eval_evalf(self, prec):
        return sympy.Max(0, self.args[0])._eval_evalf(prec)


@dataclass(frozen=True)
class Activation:
    """An elementwise scalar function f and how every printer and prover spells it."""

    name: str
    latex: str
    scalar: Callable = field(compare=False)
    deriv_output: Callable | None = field(default=None, compare=False)
    deriv_input: Callable | None = field(default=None, compare=False)
    description: str = field(default="", compare=False)

    def deriv(self, z):
        """f'(z) as a SymPy expression in z."""
        if self.deriv_input is not None:
            return self.deriv_input(z)
        return sympy.diff(self.scalar(z), z) if isinstance(z, sympy.Symbol) else \
            sympy.diff(self.scalar(_Z), _Z).subs(_Z, z)

    def __call__(self, arg: Expr) -> Expr:
        return Act(self, arg)

    def __repr__(self):
        return f"Activation({self.name})"


_Z = sympy.Symbol("z", real=True)

sigmoid = Activation(
    "sigmoid", r"\sigma", Sigmoid, deriv_output=lambda y: y * (1 - y),
    description="logistic sigmoid 1/(1+e^{-z})")
tanh = Activation(
    "tanh", r"\tanh", sympy.tanh, deriv_output=lambda y: 1 - y**2,
    description="hyperbolic tangent")
relu = Activation(
    "relu", r"\mathrm{ReLU}", ReLU, deriv_input=lambda z: sympy.Heaviside(z, 0),
    description="max(0, z)")
# Hochreiter & Schmidhuber 1997, Sec. 5 experiments: g(x) = 4 sigma(x) - 2 on [-2, 2] and
# h(x) = 2 sigma(x) - 1 on [-1, 1]; their derivatives through the output: (4 - y^2)/4, (1 - y^2)/2.
g1997 = Activation(
    "g1997", "g", lambda z: 4 * Sigmoid(z) - 2, deriv_output=lambda y: (4 - y**2) / 4,
    description="cell input squashing of the 1997 LSTM, 4 sigma(z) - 2")
h1997 = Activation(
    "h1997", "h", lambda z: 2 * Sigmoid(z) - 1, deriv_output=lambda y: (1 - y**2) / 2,
    description="cell output squashing of the 1997 LSTM, 2 sigma(z) - 1")


def identity(arg: Expr) -> Expr:
    """The identity activation: returns its argument (no node, nothing to differentiate)."""
    return arg


ACTIVATIONS = {a.name: a for a in (sigmoid, tanh, relu, g1997, h1997)}


def scalar_activation(name: str, fn: Callable, latex: str | None = None,
                      deriv_output: Callable | None = None) -> Activation:
    """An activation from any scalar SymPy function of one argument.

    >>> import sympy
    >>> softsign = scalar_activation("softsign", lambda z: z / (1 + sympy.Abs(z)))
    >>> softsign.name
    'softsign'
    """
    if not name.isidentifier():
        raise ValueError(f"activation name {name!r} must be a Python identifier")
    probe = fn(_Z)
    if not isinstance(probe, sympy.Expr):
        raise TypeError(f"activation {name!r}: fn must return a SymPy expression")
    act = Activation(name, latex or r"\operatorname{%s}" % name, fn, deriv_output=deriv_output,
                     description=f"user activation {sympy.sstr(probe)}")
    ACTIVATIONS.setdefault(name, act)
    return act
