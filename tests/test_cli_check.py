"""``lstmsym check``: one line per formula, the kernel's gradcheck, exit codes, ``--all``."""
import subprocess
import sys

import pytest

from lstmsym.cli import main
from lstmsym.derive import derive
from lstmsym.cells import get_cell
from lstmsym.expr import Had
from lstmsym.rules import RULES
from lstmsym.verification.symbolic import formulas


def test_one_line_per_formula_then_gradcheck(capsys):
    status = main(["check", "elman-tanh", "--sizes", "2,3"])
    out = capsys.readouterr().out.splitlines()
    n = len(formulas(derive(get_cell("elman-tanh"))))
    proof = [line for line in out if "exact" in line or "numeric" in line]
    grads = [line for line in out if "finite-differences" in line]
    assert status == 0
    assert len(proof) == n and all(line.startswith("ok") for line in proof)
    assert grads and all(line.startswith("ok") for line in grads)
    assert "(H=2,3 I=2)" in proof[0]
    assert out[-1].startswith("ok: elman-tanh: formulas proven") and f"{n}/{n}" in out[-1]


def test_no_gradcheck_and_truncation(capsys):
    status = main(["check", "lstm1997", "--sizes", "2", "--no-gradcheck",
                   "--truncation", "1997"])
    out = capsys.readouterr().out
    assert status == 0
    assert "finite-differences" not in out and "gradcheck skipped" in out


def test_a_failing_formula_gives_exit_1(capsys, monkeypatch):
    def wrong_had(y, g):        # each factor gets g alone: drops the other factors
        return [(a, g) for a in y.args]
    monkeypatch.setitem(RULES, Had, wrong_had)
    status = main(["check", "lstm", "--sizes", "2"])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL grad" in out and "max |difference|" in out
    assert "FAIL gradcheck lstm" in out
    assert out.splitlines()[-1].startswith("FAILED: lstm")


@pytest.mark.parametrize("argv, message", [
    (["check", "no-such-cell"], "Available cells: "),
    (["check"], "name one cell or give --all"),
    (["check", "lstm", "--all"], "name one cell or give --all"),
    (["check", "lstm", "--sizes", "2,x"], "--sizes '2,x'"),
    (["check", "lstm", "--sizes", "0"], "--sizes '0'"),
    (["check", "lstm", "--input-size", "0"], "--input-size 0"),
])
def test_bad_input_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_cell_from_the_shell_lists_cells():
    run = subprocess.run([sys.executable, "-m", "lstmsym", "check", "peephole"],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "peephole-lstm" in run.stderr and "Traceback" not in run.stderr


def test_all_prints_a_summary_table(capsys, monkeypatch):
    import lstmsym.cells
    monkeypatch.setattr(lstmsym.cells, "cell_names", lambda: ["elman-tanh", "linear"])
    status = main(["check", "--all", "--sizes", "2"])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert status == 0
    assert lines[0].split() == ["cell", "formulas", "proven", "gradcheck", "time"]
    assert lines[2].startswith("elman-tanh") and lines[3].startswith("linear")
    assert lines[-1].startswith("2/2 cells hold")
    assert "[1/2] elman-tanh" in captured.err and "[2/2] linear" in captured.err


@pytest.mark.slow
def test_check_peephole_lstm_end_to_end(capsys):
    assert main(["check", "peephole-lstm"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "28/28" in out
