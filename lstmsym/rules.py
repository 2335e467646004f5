"""THE table of vector-level backward rules: one vector-Jacobian product per primitive.

Each rule takes the node ``y`` and the cotangent ``g`` = nabla_y Div and returns, for each child
``a`` of ``y``, the contribution to nabla_a Div. Every row reads alike: ``(node, g) -> [(child,
contribution), ...]``. tests/test_rules.py proves each row against SymPy's scalar ``diff`` of the
same operation at small sizes.

Derivatives of activations are ``ActDeriv`` nodes, f'(a); the printers write sigma' and tanh'
through the stored output (y(1-y), 1-y^2), as the notes do.
"""
from __future__ import annotations

from lstmsym.errors import RuleError
from lstmsym.expr import (Act, ActDeriv, Add, BlockSum, Had, MatVec, Ones, Outer, Repeat, Scale,
                          Sym, Zero, had, scale)


# ----- Sums ------------------------------------------------------------------------------------
def _add(y: Add, g):
    return [(a, g) for a in y.args]


def _scale(y: Scale, g):
    return [(y.arg, scale(y.coeff, g))]


# ----- Products --------------------------------------------------------------------------------
def _had(y: Had, g):
    return [(a, had(g, *(b for j, b in enumerate(y.args) if j != i)))
            for i, a in enumerate(y.args)]


def _matvec(y: MatVec, g):
    if y.transpose:   # y = M^T v:  v gets M g,  M gets v g^T
        return [(y.vec, MatVec(y.mat, g)), (y.mat, Outer(y.vec, g))]
    return [(y.vec, MatVec(y.mat, g, transpose=True)), (y.mat, Outer(g, y.vec))]


# ----- Elementwise activations -------------------------------------------------------------------
def _act(y: Act, g):
    return [(y.arg, had(g, ActDeriv(y.fn, y.arg)))]


# ----- Block broadcast (1997 memory-cell blocks) -----------------------------------------------------
def _repeat(y: Repeat, g):
    return [(y.arg, BlockSum(g, y.k, y.arg.shape[0]))]


def _blocksum(y: BlockSum, g):
    return [(y.arg, Repeat(g, y.k, y.arg.shape[0]))]


# ----- Leaves: nothing to pass on --------------------------------------------------------------------
def _leaf(y, g):
    return []


RULES = {
    Add: _add,
    Scale: _scale,
    Had: _had,
    MatVec: _matvec,
    Act: _act,
    Repeat: _repeat,
    BlockSum: _blocksum,
    Ones: _leaf,
    Zero: _leaf,
}

# Nodes that only appear in backward expressions: differentiating them would be a second-order
# derivative, which lstmsym does not take.
NOT_DIFFERENTIABLE = (ActDeriv, Outer)


def vjp(y, g) -> list:
    """Contributions of cotangent ``g`` at node ``y`` to each child of ``y``."""
    rule = RULES.get(type(y))
    if rule is None:
        what = type(y).__name__
        if isinstance(y, NOT_DIFFERENTIABLE):
            raise RuleError(f"no backward rule for {what} ({y!r}): second derivatives are not "
                            "supported")
        raise RuleError(f"no backward rule for primitive {what} ({y!r})")
    return rule(y, g)


def backprop(expr, g, emit) -> None:
    """Push cotangent ``g`` through ``expr`` down to its ``Sym`` leaves: ``emit(leaf, term)``."""
    if isinstance(expr, Sym):
        emit(expr, g)
        return
    for child, contribution in vjp(expr, g):
        if isinstance(contribution, Zero):
            continue
        backprop(child, contribution, emit)
