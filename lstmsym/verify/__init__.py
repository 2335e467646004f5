"""Verification: symbolic proof, finite differences, the PyTorch oracle, and user formulas."""
from lstmsym.verify.report import Verdict

__all__ = ["Verdict"]
