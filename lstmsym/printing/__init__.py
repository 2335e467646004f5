"""Printers: expression trees (lstmsym.expr) to text.

- ``latex``: LaTeX math in the lecture notes' notation (lstmsym.printing.latex; the function is
  ``lstmsym.latex`` or ``lstmsym.printing.latex.latex``);
- ``document``: whole derivation documents, standalone LaTeX and Markdown
  (lstmsym.printing.document);
- ``kernel``, ``numpy_printer``: the NumPy kernels' code tree and expression printer.

Submodules are imported on use, so ``import lstmsym.printing`` stays cheap. (A function here
named like a submodule would be replaced by that submodule as soon as it is imported.)
"""
