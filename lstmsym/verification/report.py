"""The verdict of one check, shared by the proof, the gradient check and the oracle."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """One line of ``lstmsym check``: what was checked, how, whether it held, how long it took.

    ``method`` is e.g. ``"exact"`` (algebraic proof), ``"numeric-fallback"`` (high-precision
    random evaluation, said so), ``"finite-differences"`` or ``"torch"``.
    """

    name: str
    ok: bool
    method: str
    seconds: float
    detail: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        extra = f"  ({self.detail})" if self.detail else ""
        return f"{mark} {self.name:<40} {self.method:<18} {self.seconds:6.2f}s{extra}"
