"""The cell registry: every named cell lstmsym knows, and the API to add your own.

``register(factory)`` enrols a cell (a zero-argument function returning a ``Cell``, or a
``Cell``) in ``lstmsym list``, ``derive --all``, ``check --all`` and every parametrised test.
"""
from __future__ import annotations

import difflib

from lstmsym.cells.spec import Cell, CellBuilder, Equation, affine
from lstmsym.errors import UnknownCellError

_REGISTRY: dict = {}


def register(factory, name: str | None = None):
    """Add a cell (or a zero-argument factory returning one) to the registry; returns it."""
    key = name or (factory.name if isinstance(factory, Cell) else None)
    if key is None:
        key = factory().name
    _REGISTRY[key] = factory
    return factory


def cell_names() -> list:
    _load_zoo()
    return list(_REGISTRY)


def get_cell(name) -> Cell:
    """The registered cell called ``name`` (a ``Cell`` is returned as it is)."""
    if isinstance(name, Cell):
        return name
    _load_zoo()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownCellError(f"unknown cell {name!r}.{hint} Available cells: "
                               + ", ".join(_REGISTRY))
    entry = _REGISTRY[name]
    return entry if isinstance(entry, Cell) else entry()


def _load_zoo():
    from lstmsym.cells import zoo  # noqa: F401  (registers the built-in cells on import)


__all__ = ["Cell", "CellBuilder", "Equation", "affine", "register", "get_cell", "cell_names"]
