"""Two or more cells side by side: their forward equations in one table, their Jacobian chains.

Used by the GRU notebook (``gru`` against ``gru-torch``: where the reset gate is applied) and
anywhere two forms of a cell are to be read together. The table is a layout ``Document``
(lstmsym.printing.layout), printed by ``to_markdown`` or ``to_latex``; every formula comes
from the LaTeX printer, so nothing here spells an equation by hand.

>>> from lstmsym.printing.layout import to_markdown
>>> "gru-torch" in to_markdown(side_by_side(["gru", "gru-torch"]))
True
"""
from __future__ import annotations

from lstmsym.cells import get_cell
from lstmsym.printing.document import forward_rows
from lstmsym.printing.layout import Document, Math, Paragraph, Section, Table, join_signed


def _row_tex(row) -> str:
    return f"{row.lhs} {row.rel} {join_signed(row.terms)}"


def side_by_side(cells, title: str = "Forward equations side by side") -> Document:
    """One table: a column per cell, a row per quantity (matched by name; '—' where a cell
    has no such quantity). Rows whose equations differ are marked in the first column."""
    cells = [get_cell(c) for c in cells]
    per_cell = []
    order = []
    for cell in cells:
        rows = {}
        targets = [e.target for e in cell.equations if not e.preact_of]
        for target, row in zip(targets, forward_rows(cell)):
            rows[target.name] = _row_tex(row)
            if target.name not in order:
                order.append(target.name)
        per_cell.append(rows)
    header = (("quantity",),) + tuple((c.name,) for c in cells)
    body = []
    for name in order:
        texts = [rows.get(name) for rows in per_cell]
        differs = len({t for t in texts}) > 1
        first = (name + (" (written differently)" if differs else ""),)
        body.append(first + tuple((Math(t),) if t else ("—",) for t in texts))
    sources = tuple(Paragraph((f"{c.name}: {c.source}",)) for c in cells)
    return Document(title, (Section("Equations", (Table(header, tuple(body)),) + sources),))
