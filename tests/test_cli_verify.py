"""``lstmsym verify``: exit status 0 correct, 1 wrong, 2 unusable input; file, stdin, --formula."""
import io
import subprocess
import sys
from pathlib import Path

import pytest

from lstmsym.cli import main

DATA = Path(__file__).parent / "data"
RIGHT = r"\nabla_{h_t}Div \circ o_t \circ \tanh'(C_t) + \nabla_{C_{t+1}}Div \circ f_{t+1}"
WRONG = r"\nabla_{h_t}Div \circ o_t \circ \tanh'(C_t)"


def run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_correct_formula_exits_0(capsys):
    status, out, _ = run(["verify", "lstm", "--wrt", "C_t", "--formula", RIGHT], capsys)
    assert status == 0
    assert out.startswith("correct") and "proof:" in out


def test_wrong_formula_exits_1_and_names_the_missing_term(capsys):
    status, out, _ = run(["verify", "lstm", "--wrt", "C_t", "--formula", WRONG], capsys)
    assert status == 1
    assert r"missing carry term: \nabla_{C_{t+1}}\mathrm{Div} \circ f_{t+1}" in out
    assert "corrected:" in out and "counterexample" in out


def test_file_after_the_options_and_lecture_profile(capsys):
    status, out, _ = run(["verify", "peephole-lstm", "--profile", "lecture",
                          str(DATA / "lecture_grad_h.tex")], capsys)
    assert status == 1
    assert r"wrong weight matrix: W_{hi} where W_{hC} belongs" in out


def test_formula_from_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(RIGHT + "\n"))
    status, _, _ = run(["verify", "lstm", "--wrt", "C_t", "-"], capsys)
    assert status == 0


def test_left_hand_side_names_the_gradient(capsys):
    status, _, _ = run(["verify", "lstm", "--formula", r"\nabla_{C_t}Div = " + RIGHT], capsys)
    assert status == 0
    status, _, err = run(["verify", "lstm", "--wrt", "h_t", "--formula",
                          r"\nabla_{C_t}Div = " + RIGHT], capsys)
    assert status == 2 and "--wrt" in err


def test_map_renames(capsys):
    text = RIGHT.replace("f_{t+1}", "F_{t+1}")
    status, _, _ = run(["verify", "lstm", "--wrt", "C_t", "--map", "F=f", "--formula", text],
                       capsys)
    assert status == 0


@pytest.mark.parametrize("argv,needle", [
    (["--formula", RIGHT + r" + \circ"], "line 1, column"),
    (["--formula", RIGHT.replace("o_t", "q_t")], "unknown symbol `q_t`"),
    (["--formula", r"W_{xf} \delta^f_t"], "shape error in the term"),
    (["--formula", ""], "empty"),
    ([str(DATA / "no-such-file.tex")], "no such file"),
])
def test_unusable_input_exits_2(argv, needle, capsys):
    wrt = "x_t" if "delta" in " ".join(argv) else "C_t"
    status, out, err = run(["verify", "lstm", "--wrt", wrt] + argv, capsys)
    assert status == 2
    assert needle in err
    assert "Traceback" not in err


def test_parse_error_shows_a_caret(capsys):
    status, _, err = run(["verify", "lstm", "--wrt", "C_t", "--formula",
                          r"\nabla_{h_t}Div \circ ) o_t"], capsys)
    lines = err.splitlines()
    assert status == 2
    assert lines[2].index("^") == lines[1].index(")")


def test_truncation_option(capsys):
    status, _, _ = run(["verify", "lstm", "--wrt", "h_t", "--truncation", "1997",
                        "--formula", r"\partial_{h_t}Div"], capsys)
    assert status == 0


def test_console_script_runs():
    p = subprocess.run(["lstmsym", "verify", "lstm", "--wrt", "C_t", "--formula", WRONG],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and p.stdout.startswith("wrong")
