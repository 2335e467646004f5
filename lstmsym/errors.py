"""The errors lstmsym raises: every message names what the user wrote, never SymPy internals."""


class LstmsymError(Exception):
    """Base class: the CLI prints these as one message and exits with status 2."""

    exit_code = 2


class CellError(LstmsymError):
    """A malformed cell: undefined symbol, state without update, cycle, bad shape."""


class ShapeError(CellError):
    """Operands whose shapes cannot match."""


class UnknownCellError(LstmsymError):
    """A cell name that is not registered."""


class RuleError(LstmsymError):
    """A primitive with no backward rule in the rules table."""


class TruncationError(LstmsymError):
    """Unusable truncation settings (k2 < 1, k1 > T, …)."""
