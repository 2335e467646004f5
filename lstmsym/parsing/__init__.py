"""Reading hand-written formulas: the lark grammar, the parser (reader.py: LaTeX -> formula tree)
and the interpreter (interpret.py: formula tree -> lstmsym expressions, through a profile)."""
from lstmsym.parsing.interpret import Claim, Hole, Reader
from lstmsym.parsing.reader import (FormulaNameError, FormulaShapeError, FormulaSyntaxError,
                                    parse)

__all__ = ["parse", "Reader", "Claim", "Hole", "FormulaSyntaxError", "FormulaNameError",
           "FormulaShapeError"]
