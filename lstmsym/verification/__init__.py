"""Verification: symbolic proof, finite differences, the PyTorch oracle, and user formulas."""
from lstmsym.verification.report import Verdict

__all__ = ["Verdict"]
