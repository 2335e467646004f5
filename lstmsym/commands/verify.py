"""``lstmsym verify CELL --wrt C_t [--profile NAME] (FORMULA.tex | - | --formula '...')``.

Judges a hand-derived gradient written in LaTeX (lstmsym.verification.judge.verify). Exit
status: 0 correct, 1 wrong, 2 input that cannot be used (parse error, unknown name, shape error).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lstmsym.errors import LstmsymError


def add_parser(sub):
    p = sub.add_parser(
        "verify", help="judge a hand-derived gradient written in LaTeX",
        description="Judge a hand-derived gradient: 'correct' with the proof, or 'wrong' with "
                    "the wrong, missing or extra terms, the corrected formula and a "
                    "counterexample. Exit status 0 correct, 1 wrong, 2 unusable input.")
    p.add_argument("cell", help="cell name (lstmsym list)")
    p.add_argument("file", nargs="?", help="file with the formula ('-': standard input)")
    p.add_argument("--formula", "-f", help="the formula itself, instead of a file")
    p.add_argument("--wrt", help="the gradient claimed: C_t, h_t, x_t, C_{t-1}, W_hf, "
                                 "\\bar{f}_t … (default: the formula's left-hand side)")
    p.add_argument("--profile", default=None,
                   help="notation profile: default (the cell's names, column vectors) or "
                        "lecture (seed 001: row vectors, W_Cf, \\sigma'(.) placeholders)")
    p.add_argument("--map", action="append", default=[], metavar="YOURS=CELLS",
                   help="read a name as one of the cell's, e.g. --map p_f=w_Cf (repeatable)")
    p.add_argument("--convention", choices=("row", "column"),
                   help="row: ∇ ∘ a W means W^T(∇ ∘ a); column: write W^T yourself "
                        "(default: the profile's)")
    p.add_argument("--truncation", choices=("none", "1997"), default="none",
                   help="judge against the 1997 truncated gradient instead of the exact one")
    p.set_defaults(run=run)
    # the formula file may come after the options (lstmsym verify CELL --wrt C_t F.tex)
    p.__class__ = _IntermixedParser


class _IntermixedParser(argparse.ArgumentParser):
    """A subcommand parser that accepts positionals between options."""

    _inner = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inner:
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def read_formula(args) -> str:
    if args.formula is not None and args.file is not None:
        raise LstmsymError("give the formula as a file or with --formula, not both")
    if args.formula is not None:
        return args.formula
    if args.file is None:
        raise LstmsymError("no formula: give FORMULA.tex, '-' for standard input, or "
                           "--formula '...'")
    if args.file == "-":
        return sys.stdin.read()
    path = Path(args.file)
    if not path.is_file():
        raise LstmsymError(f"no such file: {args.file}")
    return path.read_text()


def run(args):
    from lstmsym.verification.judge import verify
    text = read_formula(args)
    if not text.strip():
        raise LstmsymError("the formula is empty")
    result = verify(args.cell, args.wrt, text, profile=args.profile,
                    convention=args.convention, names=args.map,
                    truncation=None if args.truncation == "none" else args.truncation)
    print(result)
    return result.exit_code
