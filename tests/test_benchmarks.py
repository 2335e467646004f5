"""The benchmark scripts run (on tiny sizes, nothing timed is asserted), and the feature-major
LSTM of bench_alternatives.py, written by hand, agrees with the generated lstm kernel."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(name, *args):
    proc = subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def table_rows(text, first):
    return [line.split("|")[1:-1] for line in text.splitlines() if line.startswith(f"| {first}")]


def test_bench_kernels_prints_a_row_per_cell_and_dtype():
    out = run_script("bench_kernels.py", "--sizes", "2,3,4,3", "--repeats", "1", "--pause", "0",
                     "--no-memory")
    rows = [r for cell in ("lstm", "gru-torch") for r in table_rows(out, cell)]
    assert len(rows) == 4
    for r in rows:
        kernel, torch_ms, floor_ms = (float(re.match(r"\s*([\d.]+)", c).group(1))
                                      for c in r[3:6])
        assert kernel > 0 and torch_ms > 0 and floor_ms > 0
        # the ratio columns are the ratios of the time columns (printed rounded to 0.01 ms)
        assert float(r[7]) == pytest.approx(kernel / floor_ms, rel=0.3)
        assert "floor" in r[-1]


def test_bench_alternatives_runs():
    out = run_script("bench_alternatives.py", "--sizes", "2,3,4,3", "--repeats", "1")
    assert "## 1." in out and "## 2." in out and "## 3." in out
    assert len(table_rows(out, "float64")) == 3 and len(table_rows(out, "float32")) == 3


def test_feature_major_experiment_agrees_with_the_generated_kernel():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_alternatives
    finally:
        sys.path.remove(str(BENCH))
    from lstmsym.codegen import load_kernel

    kernel = load_kernel("lstm")
    bench_alternatives.check_feature_major(kernel)          # raises SystemExit on disagreement
    # and the check can fail: a wrong forget-gate weight is caught
    class Broken(bench_alternatives.FeatureMajorLSTM):
        def __init__(self, p):
            super().__init__({**p, "W_hf": p["W_hf"] * 1.01})

    saved = bench_alternatives.FeatureMajorLSTM
    bench_alternatives.FeatureMajorLSTM = Broken
    try:
        with pytest.raises(SystemExit, match="disagrees"):
            bench_alternatives.check_feature_major(kernel)
    finally:
        bench_alternatives.FeatureMajorLSTM = saved
