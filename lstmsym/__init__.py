"""lstmsym: derive, print, code-generate and verify the gradients of recurrent cells.

The pipeline (DESIGN.md): cells (``lstmsym.cells``) -> ``derive`` (rules table) -> printers
(``lstmsym.printing``: LaTeX, NumPy kernels via ``lstmsym.codegen``) and verification
(``prove``, ``lstmsym.verification.numeric.gradcheck``, ``verify`` for user formulas).

>>> import lstmsym
>>> d = lstmsym.derive(lstmsym.get_cell("peephole-lstm"))
>>> [v.name for v in d.order][:3]
['h', 'o', 'o_bar']

Heavier entry points (``verify``, ``prove``, ``generate_kernel``, ``load_kernel``, the
Jacobians) are imported on first use, so ``import lstmsym`` stays fast.
"""
from importlib import import_module

from lstmsym.cells import Cell, CellBuilder, cell_names, get_cell, register
from lstmsym.derive import Derivation, derive
from lstmsym.errors import CellError, LstmsymError, ShapeError
from lstmsym.ops import g1997, h1997, identity, relu, scalar_activation, sigmoid, tanh

__version__ = "0.1.0"

_LAZY = {
    "verify": ("lstmsym.verification.judge", "verify"),
    "VerifyResult": ("lstmsym.verification.judge", "VerifyResult"),
    "prove": ("lstmsym.verification.symbolic", "prove"),
    "gradcheck": ("lstmsym.verification.numeric", "gradcheck"),
    "generate_kernel": ("lstmsym.codegen", "generate_kernel"),
    "load_kernel": ("lstmsym.codegen", "load_kernel"),
    "latex": ("lstmsym.printing.latex", "latex"),
    "cell_document": ("lstmsym.printing.document", "cell_document"),
    "to_latex": ("lstmsym.printing.document", "to_latex"),
    "to_markdown": ("lstmsym.printing.document", "to_markdown"),
    "jacobian_latex": ("lstmsym.jacobian", "jacobian_latex"),
    "jacobian_matrix": ("lstmsym.jacobian", "jacobian_matrix"),
    "diagonal": ("lstmsym.jacobian", "diagonal"),
    "lstm1997_cell": ("lstmsym.cells.zoo", "lstm1997_cell"),
}


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lstmsym' has no attribute {name!r}")


__all__ = [
    "Cell", "CellBuilder", "cell_names", "get_cell", "register",
    "Derivation", "derive",
    "CellError", "LstmsymError", "ShapeError",
    "g1997", "h1997", "identity", "relu", "scalar_activation", "sigmoid", "tanh",
    *_LAZY, "__version__",
]
