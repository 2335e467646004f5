"""``lstmsym check CELL | --all``: the proof of every derived formula and the kernel's gradcheck.

For one cell it prints one line per formula (verdict, method, time) as each is proven
(lstmsym.verification.symbolic.prove), then the generated kernel's central-difference checks
(lstmsym.verification.numeric.gradcheck), then a summary. ``--all`` runs every registered cell
with a progress display on stderr and prints a summary table. Exit status: 0 when every verdict
holds, 1 when any fails, 2 for bad input.
"""
from __future__ import annotations

import sys
import time

from lstmsym.errors import LstmsymError


def add_parser(sub):
    p = sub.add_parser(
        "check", help="prove the derived formulas and gradient-check the kernel",
        description="Prove every derived backward formula of a cell equal to SymPy's derivative "
                    "(small sizes, exact algebra), then check the generated NumPy kernel "
                    "against central differences. Exit 0 only when everything holds.")
    p.add_argument("cell", nargs="?", help="a registered cell name (see 'lstmsym list')")
    p.add_argument("--all", action="store_true", help="check every registered cell")
    p.add_argument("--sizes", default="2,3", metavar="H1,H2",
                   help="hidden sizes of the proof's instances (default: 2,3)")
    p.add_argument("--input-size", type=int, default=2, metavar="I",
                   help="input size of the proof's instances (default: 2)")
    p.add_argument("--truncation", choices=("none", "1997"), default="none",
                   help="prove the exact gradient (none) or the 1997 truncated one")
    p.add_argument("--no-gradcheck", action="store_true",
                   help="skip the finite-difference check of the generated kernel")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="with --all: print every formula's line, not only failures")
    p.set_defaults(run=run)


def parse_sizes(text: str) -> tuple:
    """'2,3' -> (2, 3); a clear error for anything else."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        raise LstmsymError(f"--sizes {text!r}: give hidden sizes as positive integers "
                           "separated by commas, e.g. --sizes 2,3")
    return sizes


def run(args):
    from lstmsym.cells import cell_names, get_cell
    if args.all == bool(args.cell):
        raise LstmsymError("name one cell or give --all (cells: " + ", ".join(cell_names())
                           + ")")
    if args.input_size < 1:
        raise LstmsymError(f"--input-size {args.input_size}: must be a positive integer")
    sizes = parse_sizes(args.sizes)
    truncation = None if args.truncation == "none" else args.truncation
    if args.all:
        return _run_all(cell_names(), sizes, args, truncation)
    cell = get_cell(args.cell)
    result = check_cell(cell, sizes, args.input_size, truncation, not args.no_gradcheck,
                        emit=lambda v: print(v.line(), flush=True))
    print(result.summary())
    return 0 if result.ok else 1


class CellResult:
    """The verdicts of one cell's check and their summary."""

    def __init__(self, name, proof, grads, seconds):
        self.name, self.proof, self.grads, self.seconds = name, proof, grads, seconds

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.proof + (self.grads or []))

    def proof_text(self) -> str:
        held = sum(v.ok for v in self.proof)
        fallback = sum(v.ok and v.method != "exact" for v in self.proof)
        extra = f" ({fallback} numeric-fallback)" if fallback else ""
        return f"{held}/{len(self.proof)}{extra}"

    def grad_text(self) -> str:
        if self.grads is None:
            return "skipped"
        return f"{sum(v.ok for v in self.grads)}/{len(self.grads)}"

    def summary(self) -> str:
        return (f"{'ok' if self.ok else 'FAILED'}: {self.name}: formulas proven "
                f"{self.proof_text()}, gradcheck {self.grad_text()}, {self.seconds:.1f}s")


def check_cell(cell, sizes, input_size, truncation, gradcheck=True, emit=None,
               status=None) -> CellResult:
    """Prove a cell's formulas and (optionally) gradient-check its kernel.

    ``emit(verdict)`` is called as each verdict is reached; ``status(text)`` with progress.
    """
    from lstmsym.derive import derive
    from lstmsym.verification.symbolic import prove_derivation
    start = time.perf_counter()
    d = derive(cell, truncation=truncation)

    def progress(done, total, verdict):
        if emit:
            emit(verdict)
        if status:
            status(f"proof {done}/{total} {verdict.name}")

    proof = prove_derivation(d, sizes, input_size, progress=progress)
    grads = None
    if gradcheck:
        from lstmsym.verification.numeric import DEFAULT_TRUNCATIONS, gradcheck as fd_check
        modes = ("1997",) if truncation == "1997" else DEFAULT_TRUNCATIONS
        grads = fd_check(cell, seed=0, truncations=modes,
                         progress=status)
        for v in grads:
            if emit:
                emit(v)
    return CellResult(cell.name, proof, grads, time.perf_counter() - start)


def _run_all(names, sizes, args, truncation) -> int:
    from lstmsym.cells import get_cell
    tty = sys.stderr.isatty()
    results = []
    for n, name in enumerate(names, 1):
        def status(text, n=n, name=name):
            line = f"[{n}/{len(names)}] {name}: {text}"
            if tty:
                sys.stderr.write("\r\033[K" + line[:150])
                sys.stderr.flush()

        def emit(v):
            if args.verbose or not v.ok:
                if tty:
                    sys.stderr.write("\r\033[K")
                print(f"{name}: {v.line()}", flush=True)

        if not tty:
            print(f"[{n}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        results.append(check_cell(get_cell(name), sizes, args.input_size, truncation,
                                  not args.no_gradcheck, emit=emit, status=status))
    if tty:
        sys.stderr.write("\r\033[K")
    print(summary_table(results))
    return 0 if all(r.ok for r in results) else 1


def summary_table(results) -> str:
    """The table of ``check --all``: cell, formulas proven, gradcheck, time."""
    rows = [("cell", "formulas proven", "gradcheck", "time", "")]
    for r in results:
        rows.append((r.name, r.proof_text(), r.grad_text(), f"{r.seconds:.1f}s",
                     "" if r.ok else "FAILED"))
    total = sum(r.seconds for r in results)
    failed = sum(not r.ok for r in results)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + (
        f"  {row[4]}" if row[4] else "") for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"{len(results) - failed}/{len(results)} cells hold; total {total:.1f}s")
    return "\n".join(lines)
