"""Printers: expression trees (lstmsym.expr) to text.

- ``latex``: LaTeX math in the lecture notes' notation (lstmsym.printing.latex);
- ``document``: whole derivation documents, standalone LaTeX and Markdown
  (lstmsym.printing.document).

Submodules are imported on use, so ``import lstmsym.printing`` stays cheap.
"""
from __future__ import annotations


def latex(e, **settings) -> str:
    """LaTeX for an lstmsym expression (see lstmsym.printing.latex.latex)."""
    from lstmsym.printing.latex import latex as _latex
    return _latex(e, **settings)


__all__ = ["latex"]
