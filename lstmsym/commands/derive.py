"""``lstmsym derive``: a cell's forward and backward equations as LaTeX, Markdown or PDF.

    lstmsym derive peephole-lstm                  LaTeX (align environments) on stdout
    lstmsym derive peephole-lstm --format markdown
    lstmsym derive peephole-lstm -o cell.tex      standalone document (also .md, .pdf)
    lstmsym derive lstm1997 --truncation 1997     the 1997 truncated gradient
    lstmsym derive lstm --mode tbptt --k1 4 --k2 8
    lstmsym derive lstm1997 --jacobian            one-step state Jacobians (dC_t/dC_{t-1} …)
    lstmsym derive --all -o derivations/          .tex and .md per cell + one PDF of all

The work is done by lstmsym.printing.document; this module only reads arguments and writes.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from lstmsym.errors import LstmsymError
from lstmsym.schedule import check_window

MODES = {
    "all": ("notation", "forward", "step", "bptt", "tbptt", "1997"),
    "step": ("notation", "forward", "step"),
    "bptt": ("notation", "forward", "step", "bptt"),
    "tbptt": ("notation", "forward", "step", "tbptt"),
    "1997": ("notation", "forward", "1997"),
}
FORMATS = {".tex": "latex", ".md": "markdown", ".pdf": "pdf"}
COLLECTION_PDF = "lstmsym-derivations.pdf"
INDEX = "README.md"


def add_parser(sub):
    p = sub.add_parser(
        "derive", help="print a cell's forward and backward equations (LaTeX, Markdown, PDF)",
        description="Derive a cell's backward equations and print them in the lecture "
                    "notation: forward pass, one backward step, full BPTT, truncated BPTT "
                    "and the 1997 truncation.")
    p.add_argument("cell", nargs="?", help="a registered cell (see 'lstmsym list')")
    p.add_argument("--all", action="store_true",
                   help="every registered cell: with -o DIR writes NAME.tex and NAME.md for "
                        f"each, an index README.md and {COLLECTION_PDF} with all of them")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="write to PATH (.tex standalone LaTeX, .md Markdown, .pdf via "
                        "pdflatex) instead of stdout; a directory with --all")
    p.add_argument("--format", choices=("latex", "markdown"), default=None,
                   help="output format (default: from the file suffix, else latex)")
    p.add_argument("--mode", choices=tuple(MODES), default="all",
                   help="which sections: step (forward + one backward step), bptt, tbptt, "
                        "1997, or all (default)")
    p.add_argument("--truncation", choices=("none", "1997"), default="none",
                   help="derive the exact gradient (none) or Hochreiter & Schmidhuber's "
                        "truncated one (1997)")
    p.add_argument("--k1", type=int, default=None,
                   help="truncated BPTT: a backward pass every k1 steps (default: symbolic)")
    p.add_argument("--k2", type=int, default=None,
                   help="truncated BPTT: each pass goes back at most k2 steps")
    p.add_argument("--jacobian", action="store_true",
                   help="print the one-step state Jacobians (e.g. dC_t/dC_{t-1}) instead")
    p.add_argument("--no-pdf", action="store_true",
                   help="with --all: write the .tex and .md files only")
    p.set_defaults(run=run)


def run(args):
    truncation = None if args.truncation == "none" else args.truncation
    _check_windows(args.k1, args.k2)
    if args.all:
        if args.cell:
            raise LstmsymError("give either a cell name or --all, not both")
        if not args.output:
            raise LstmsymError("--all writes files: give the directory with -o DIR")
        return write_all(Path(args.output), truncation, MODES[args.mode], args.k1, args.k2,
                         pdf=not args.no_pdf)
    if not args.cell:
        from lstmsym.cells import cell_names
        raise LstmsymError("which cell? give a name or --all. Available cells: "
                           + ", ".join(cell_names()))
    from lstmsym.cells import get_cell
    cell = get_cell(args.cell)
    fmt = _format(args)
    from lstmsym.printing.document import (cell_document, jacobian_document, to_latex,
                                           to_markdown)
    if args.jacobian:
        doc = jacobian_document(cell, truncation=truncation)
    else:
        doc = cell_document(cell, truncation=truncation, parts=MODES[args.mode], k1=args.k1,
                            k2=args.k2)
    if fmt == "markdown":
        return _emit(to_markdown(doc), args.output)
    if fmt == "pdf":
        from lstmsym.printing.pdf import write_pdf
        write_pdf(to_latex(doc, standalone=True), args.output)
        return 0
    return _emit(to_latex(doc, standalone=args.output is not None), args.output)


def write_all(directory: Path, truncation, parts, k1, k2, pdf=True) -> int:
    """NAME.tex and NAME.md for every registered cell, an index README.md, then one PDF with
    all of them."""
    from lstmsym.cells import cell_names, get_cell
    from lstmsym.io import write_atomic
    from lstmsym.printing.document import (cell_document, collection_latex, index_document,
                                           to_latex, to_markdown)
    if pdf:
        from lstmsym.printing.pdf import pdflatex_path
        pdflatex_path()  # fail before writing anything when the PDF cannot be made
    if directory.exists() and not directory.is_dir():
        raise LstmsymError(f"cannot write into {directory}: it is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LstmsymError(f"cannot create directory {directory}: {exc.strerror or exc}") from None
    names = cell_names()
    start = time.perf_counter()
    docs = []
    for k, name in enumerate(names, 1):
        _progress(f"[{k}/{len(names)}] {name}")
        doc = cell_document(get_cell(name), truncation=truncation, parts=parts, k1=k1, k2=k2)
        docs.append(doc)
        write_atomic(directory / f"{name}.tex", to_latex(doc, standalone=True))
        write_atomic(directory / f"{name}.md", to_markdown(doc))
    # the index names the PDF even with --no-pdf, so it does not depend on that option
    write_atomic(directory / INDEX, to_markdown(index_document(names, COLLECTION_PDF)))
    if pdf:
        from lstmsym.printing.pdf import write_pdf
        _progress(f"compiling {directory / COLLECTION_PDF} with pdflatex")
        write_pdf(collection_latex(docs), directory / COLLECTION_PDF, runs=2)
    _progress(f"wrote {2 * len(names) + 1} files{' and the PDF' if pdf else ''} to {directory} "
              f"in {time.perf_counter() - start:.1f} s")
    return 0


def _format(args) -> str:
    if args.output is None:
        return args.format or "latex"
    suffix = Path(args.output).suffix.lower()
    if suffix in FORMATS:
        implied = FORMATS[suffix]
        if args.format and args.format != implied:
            raise LstmsymError(f"--format {args.format} does not match the suffix of "
                               f"{args.output}")
        return implied
    if args.format:
        return args.format
    raise LstmsymError(f"cannot tell the format of {args.output}: use a .tex, .md or .pdf "
                       "file, or --format")


def _check_windows(k1, k2):
    for name, k in (("k1", k1), ("k2", k2)):
        if k is not None:
            check_window(name, k)


def _emit(text: str, output) -> int:
    if output is None:
        sys.stdout.write(text)
        return 0
    from lstmsym.io import write_atomic
    write_atomic(output, text)
    _progress(f"wrote {output}")
    return 0


def _progress(msg: str):
    print(msg, file=sys.stderr, flush=True)
