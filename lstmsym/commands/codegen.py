"""``lstmsym codegen``: not built yet."""
from __future__ import annotations

from lstmsym.errors import LstmsymError


def add_parser(sub):
    p = sub.add_parser("codegen", help="(not built yet)")
    p.set_defaults(run=run)


def run(args):
    raise LstmsymError("'lstmsym codegen' is not built yet")
