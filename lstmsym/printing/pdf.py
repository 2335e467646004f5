"""Compiling a standalone LaTeX document to PDF with pdflatex, reproducibly.

The document is compiled in a temporary directory (nothing is left next to the output), with
``SOURCE_DATE_EPOCH=0`` and ``FORCE_SOURCE_DATE=1`` so the dates in the PDF are fixed; the
preamble sets ``\\pdftrailerid{}`` so the trailer ID is too (lstmsym.printing.layout). The PDF
is written with lstmsym.io.write_atomic.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from lstmsym.errors import LstmsymError
from lstmsym.io import write_atomic

PDFLATEX = "pdflatex"


def pdflatex_path() -> str:
    """The pdflatex executable, or a clear error saying how to get it."""
    exe = shutil.which(PDFLATEX)
    if exe is None:
        raise LstmsymError("pdflatex was not found on PATH; it is needed to write the PDF "
                           "(install it, e.g. apt-get install texlive-latex-base, or pass "
                           "--no-pdf)")
    return exe


def compile_pdf(tex: str, runs: int = 1, jobname: str = "document") -> bytes:
    """Compile ``tex`` (a whole document) and return the PDF bytes.

    ``runs`` > 1 resolves references such as a table of contents.
    """
    exe = pdflatex_path()
    env = dict(os.environ, SOURCE_DATE_EPOCH="0", FORCE_SOURCE_DATE="1")
    with tempfile.TemporaryDirectory(prefix="lstmsym-tex-") as d:
        src = Path(d) / f"{jobname}.tex"
        src.write_text(tex, encoding="utf-8")
        for _ in range(runs):
            try:
                proc = subprocess.run(
                    [exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                     src.name], cwd=d, env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
            except subprocess.TimeoutExpired:
                raise LstmsymError("pdflatex did not finish within 300 s") from None
            if proc.returncode != 0:
                raise LstmsymError("pdflatex failed: " + _first_error(Path(d) / f"{jobname}.log",
                                                                       proc.stdout))
        return (Path(d) / f"{jobname}.pdf").read_bytes()


def write_pdf(tex: str, path, runs: int = 1) -> Path:
    """Compile ``tex`` and write the PDF to ``path`` atomically."""
    return write_atomic(path, compile_pdf(tex, runs=runs, jobname=Path(path).stem or "document"))


def _first_error(log: Path, output: bytes) -> str:
    text = log.read_text(errors="replace") if log.exists() else output.decode(errors="replace")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("!"):
            return " ".join(s.strip() for s in lines[i:i + 3])
    return (lines[-1] if lines else "no output")
