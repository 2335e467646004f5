"""Reading hand-written formulas: the lark grammar and the reader (LaTeX -> lstmsym trees)."""
from lstmsym.parsing.reader import (FormulaNameError, FormulaShapeError, FormulaSyntaxError,
                                    Reader, parse)

__all__ = ["parse", "Reader", "FormulaSyntaxError", "FormulaNameError", "FormulaShapeError"]
