"""lstmsym: derive, print, code-generate and verify the gradients of recurrent cells.

>>> import lstmsym
>>> d = lstmsym.derive(lstmsym.get_cell("peephole-lstm"))
>>> [v.name for v in d.order][:3]
['h', 'o', 'o_bar']
"""
from lstmsym.cells import Cell, CellBuilder, cell_names, get_cell, register
from lstmsym.derive import Derivation, derive
from lstmsym.errors import CellError, LstmsymError, ShapeError
from lstmsym.ops import identity, relu, scalar_activation, sigmoid, tanh

__version__ = "0.1.0"

__all__ = [
    "Cell", "CellBuilder", "cell_names", "get_cell", "register",
    "Derivation", "derive",
    "CellError", "LstmsymError", "ShapeError",
    "identity", "relu", "scalar_activation", "sigmoid", "tanh",
    "__version__",
]
