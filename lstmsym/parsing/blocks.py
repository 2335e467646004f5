"""Reading the Kronecker notation of memory-cell blocks (cells whose gates are shared by blocks
of k cells, such as lstm1997-blocks, whose gates have G = H/k entries).

The LaTeX printer writes ``Repeat(v, k)`` as ``v \\otimes \\mathbf{1}_{k}`` (each entry of v
repeated k times) and ``BlockSum(u, k)`` as ``(I \\otimes \\mathbf{1}_{k}^{\\top}) u`` (each run of
k entries of u summed). ``BlockReading`` is the part of the Reader (interpret.py) that reads them
back: ``v \\otimes 1_k`` is a vector; ``I \\otimes 1_k`` (H×G) and ``I \\otimes 1_kᵀ`` (G×H) are
"block" values applied like matrices in either vector convention. k must be the cell's block
size; any other use of ``\\otimes`` is an error with the line, the column and a caret.
"""
from __future__ import annotations

from lstmsym.expr import BlockSum, Expr, Repeat
from lstmsym.parsing.reader import (FormulaShapeError, FormulaSyntaxError, Kron, OnesNode,
                                    Postfix, Quantity, Sum, located)
from lstmsym.parsing.reader import dims_text as _dims


class BlockReading:
    """Methods of the Reader for memory-cell blocks (it provides cell, formula, convention,
    symbols, value() and shape_error())."""

    def located(self, node, what: str) -> str:
        return located(self.formula.text, node.span[0], what)

    def kron(self, f: Kron) -> Value:
        """v ⊗ 1_k: v repeated (a vector); I ⊗ 1_k (H×G) or I ⊗ 1_kᵀ (G×H): a "block"
        value, applied like a matrix (the transposed one sums each run of k entries)."""
        from lstmsym.parsing.interpret import Hole, Value  # interpret.py imports this module
        k, ones_t = self.ones_size(f)
        dim, base = self.block_dims(k, f.right)
        if self.is_identity(f.left):
            q = f.left
            if q.label not in (None, dim):
                raise FormulaShapeError(self.located(q, f"`{self.formula.source(q)}` in "
                                        f"`{self.formula.source(f)}`: the identity has the "
                                        f"size {dim} of the blocks (one entry per block of {k} "
                                        f"cells); write I or I_{{{dim}}}"))
            return Value("block", (k, dim, base), f, ones_t)
        v = self.value(f.left)
        if v.kind == "vec" and isinstance(v.expr, Hole):     # \\sigma'(.) \\otimes 1_k
            v = Value("vec", self.reshape_hole(v.expr, (dim,)), v.node)
        if v.kind != "vec" or (ones_t and self.convention == "column"):
            raise FormulaSyntaxError(self.located(f, f"`{self.formula.source(f)}` is not "
                                     "understood: \\otimes is read only as v \\otimes "
                                     f"\\mathbf{{1}}_{{{k}}} (each entry of the vector v repeated "
                                     f"{k} times) and (I \\otimes "
                                     f"\\mathbf{{1}}_{{{k}}}^{{\\top}}) u (each run of {k} "
                                     "entries of u summed)"))
        if v.expr.shape != (dim,):
            raise FormulaShapeError(self.located(f, f"shape error in `{self.formula.source(f)}`:"
                                    f" `{self.formula.source(f.left)}` has size "
                                    f"{_dims(v.expr.shape)}, but \\otimes \\mathbf{{1}}_{{{k}}} "
                                    f"repeats a vector of size {dim} (one entry per block) into "
                                    f"size {base}"))
        return Value("vec", Repeat(v.expr, k, base), f)

    def ones_size(self, f: Kron) -> tuple:
        """(k, transposed) of the right factor of ``f``, which must be 1_k or 1_kᵀ."""
        node = f.right
        t = isinstance(node, Postfix) and node.transpose
        if isinstance(node, Postfix) and node.power == 1:
            node = node.arg
        if not isinstance(node, OnesNode):
            raise FormulaSyntaxError(self.located(f.right, f"`{self.formula.source(f)}`: "
                                     "\\otimes is read only before a vector of ones, "
                                     "\\mathbf{1}_{k} or \\mathbf{1}_{k}^{\\top} (k the block "
                                     "size)"))
        size = node.size
        if size is None or not size.isdigit() or int(size) < 1:
            shown = "no size" if size is None else f"the size {size!r}"
            raise FormulaSyntaxError(self.located(f.right, f"`{self.formula.source(f.right)}` "
                                     f"has {shown}: after \\otimes write the block size as a "
                                     "positive integer, e.g. \\mathbf{1}_{2}"))
        return int(size), t

    def block_dims(self, k: int, node) -> tuple:
        """(block dimension, base dimension) of the cell's blocks of k cells."""
        dims = getattr(self.cell, "dims", None) or {}
        for dim, (base, size) in dims.items():
            if size == k:
                return dim, base
        if not dims:
            raise FormulaShapeError(self.located(node, f"cell {self.cell.name!r} has no "
                                    "memory-cell blocks, so \\otimes \\mathbf{1}_{k} has "
                                    "nothing to repeat (it is read for cells whose gates are "
                                    "shared by blocks of cells, such as lstm1997-blocks)"))
        sizes = " or ".join(f"\\mathbf{{1}}_{{{s}}}" for _, s in dims.values())
        shown = ", ".join(f"{s} cells ({d} = {b}/{s})" for d, (b, s) in dims.items())
        raise FormulaShapeError(self.located(node, f"`{self.formula.source(node)}`: the blocks "
                                f"of cell {self.cell.name!r} have {shown}, not {k}; write "
                                f"{sizes}"))

    def block_hint(self, v: Value, acc: Expr) -> str:
        """For a cell with blocks: how a size-G vector meets a size-H one."""
        for dim, (base, k) in (getattr(self.cell, "dims", None) or {}).items():
            src = self.formula.source(v.node)
            if v.expr.shape == (dim,) and acc.shape == (base,):
                return (f"; a quantity of the blocks is repeated over their {k} cells: "
                        f"\\left({src} \\otimes \\mathbf{{1}}_{{{k}}}\\right)")
            if v.expr.shape == (base,) and acc.shape == (dim,):
                return (f"; the runs of {k} cells of a block are summed first: "
                        f"\\left(I \\otimes \\mathbf{{1}}_{{{k}}}^{{\\top}}\\right) (…)")
        return ""

    def is_identity(self, node) -> bool:
        return (isinstance(node, Quantity) and node.name == "I" and "I" not in self.symbols
                and node.time is None and node.sup is None and not node.transpose
                and node.power == 1 and not node.prime)

    def apply_block(self, acc: Expr, v: Value, term) -> Expr:
        k, dim, base = v.expr
        # column: the matrix as written acts; row: acc B = Bᵀ acc
        summed = v.transpose if self.convention == "column" else not v.transpose
        need = base if summed else dim
        if acc.shape != (need,):
            what = (f"sums each run of {k} entries of a vector of size {base}" if summed else
                    f"repeats each entry of a vector of size {dim} {k} times")
            hint = ""
            if acc.shape == ((dim,) if summed else (base,)):
                other = r"\mathbf{1}_{%d}%s" % (k, "^{\\top}" if summed == (
                    self.convention == "row") else "")
                hint = (f"; I \\otimes {other} " + ("repeats" if summed else "sums") +
                        (" entries" if summed else f" each run of {k} entries"))
            raise self.shape_error(term, f"`{self.formula.source(v.node)}` {what}, but is "
                                   f"applied to a vector of size {_dims(acc.shape)}{hint} "
                                   f"({self.convention}-vector convention)")
        return BlockSum(acc, k, dim) if summed else Repeat(acc, k, base)


def lone_kron(s: Sum):
    """The Kronecker product a group holds alone, as in (I \\otimes 1_k^T), or None."""
    if len(s.terms) == 1 and s.terms[0].sign == 1 and not s.terms[0].summed:
        fs = s.terms[0].product.factors
        if len(fs) == 1 and isinstance(fs[0], Kron):
            return fs[0]
    return None


__all__ = ["BlockReading", "lone_kron"]
