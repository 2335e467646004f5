"""``lstmsym derive``: outputs, formats, files, and every kind of bad input (exit 2, no files)."""
import os
import subprocess
import sys

import pytest

from lstmsym.cells import cell_names
from lstmsym.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_stdout_latex_has_forward_and_backward_align_blocks(capsys):
    status, out, err = run(capsys, "derive", "peephole-lstm")
    assert status == 0
    assert out.count(r"\begin{align*}") == out.count(r"\end{align*}") >= 6
    assert r"\documentclass" not in out          # a body to paste, not a whole document
    assert "Forward pass" in out and "Backward pass, one step" in out
    assert r"f_{t} &= \sigma\bigl(" in out
    assert r"\nabla_{C_{t}}\mathrm{Div} &= " in out


def test_markdown_is_mathjax_ready(capsys):
    status, out, _ = run(capsys, "derive", "lstm", "--format", "markdown")
    assert status == 0
    assert out.startswith("# lstm: forward and backward equations")
    assert "$$\n\\begin{aligned}\n" in out and "\\end{aligned}\n$$" in out
    assert r"\begin{align*}" not in out


def test_modes_select_sections(capsys):
    _, step, _ = run(capsys, "derive", "lstm", "--mode", "step")
    _, full, _ = run(capsys, "derive", "lstm")
    assert "Backward pass, one step" in step
    for title in ("Full BPTT", "Truncated BPTT", "The 1997 truncation"):
        assert title not in step and title in full
    _, tb, _ = run(capsys, "derive", "lstm", "--mode", "tbptt", "--k1", "4", "--k2", "8")
    assert r"\min\bigl((c+1)\,4,\ T\bigr)" in tb
    assert r"\max\bigl(1,\ (c+1)\,4 - 8 + 1\bigr)" in tb


def test_truncation_1997_uses_the_truncated_derivation(capsys):
    status, out, _ = run(capsys, "derive", "lstm", "--truncation", "1997", "--mode", "step")
    assert status == 0
    assert "1997 truncated gradient" in out
    # under the truncation nothing flows back to h_{t-1}
    assert r"\left[\nabla_{h_{t-1}}\mathrm{Div}\right]_{t} &= \mathbf{0}" in out


def test_writes_standalone_tex_and_markdown(tmp_path, capsys):
    tex, md = tmp_path / "cell.tex", tmp_path / "cell.md"
    assert run(capsys, "derive", "gru", "-o", str(tex))[0] == 0
    assert run(capsys, "derive", "gru", "-o", str(md))[0] == 0
    t = tex.read_text()
    assert t.startswith(r"\documentclass") and t.rstrip().endswith(r"\end{document}")
    assert md.read_text().startswith("# gru:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cell.md", "cell.tex"]


def test_unknown_cell_lists_the_cells(capsys):
    status, out, err = run(capsys, "derive", "peephole-lsmt")
    assert status == 2 and out == ""
    assert "unknown cell 'peephole-lsmt'" in err
    for name in cell_names():
        assert name in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["derive"], "give a name or --all"),
    (["derive", "--all"], "-o DIR"),
    (["derive", "lstm", "--all", "-o", "x"], "not both"),
    (["derive", "lstm", "--k1", "0"], "k1 must be at least 1"),
    (["derive", "lstm", "--k2", "-3"], "k2 must be at least 1"),
    (["derive", "lstm", "-o", "out.txt"], "cannot tell the format"),
    (["derive", "lstm", "-o", "out.md", "--format", "latex"], "does not match"),
])
def test_bad_arguments_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, *argv)
    assert status == 2 and message in err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_leaves_no_file(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    status, _, err = run(capsys, "derive", "lstm", "-o", str(blocker / "x.tex"))
    assert status == 2 and "cannot write" in err
    status, _, err = run(capsys, "derive", "--all", "--no-pdf", "-o", str(blocker))
    assert status == 2 and "not a directory" in err
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_leaves_no_partial_file(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        status, _, err = run(capsys, "derive", "lstm", "-o", str(ro / "x.tex"))
        assert status == 2 and "cannot write" in err
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_missing_pdflatex_is_a_clear_error_before_any_file(tmp_path, monkeypatch, capsys):
    import lstmsym.printing.pdf as pdf
    monkeypatch.setattr(pdf.shutil, "which", lambda name: None)
    out = tmp_path / "derivs"
    status, _, err = run(capsys, "derive", "--all", "-o", str(out))
    assert status == 2 and "pdflatex was not found" in err and "--no-pdf" in err
    assert not out.exists()
    status, _, err = run(capsys, "derive", "lstm", "-o", str(tmp_path / "x.pdf"))
    assert status == 2 and "pdflatex was not found" in err
    assert not (tmp_path / "x.pdf").exists()


def test_all_without_pdf_writes_tex_and_md_for_every_cell(tmp_path, capsys):
    status, _, err = run(capsys, "derive", "--all", "--no-pdf", "-o", str(tmp_path / "d"))
    assert status == 0
    names = cell_names()
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(
        [f"{n}.tex" for n in names] + [f"{n}.md" for n in names] + ["README.md"])
    index = (tmp_path / "d" / "README.md").read_text()
    assert all(f"[{n}.tex]({n}.tex)" in index for n in names)
    assert f"[{len(names)}/{len(names)}]" in err        # progress on stderr


def test_jacobian_option_shows_the_cec(capsys, tmp_path):
    # the constant error carousel: dC_t/dC_{t-1} is the identity for lstm1997, diag(f_t) for lstm
    status, out, _ = run(capsys, "derive", "lstm1997", "--jacobian")
    assert status == 0 and r"\begin{align*}" in out
    assert r"\frac{\partial s_c(t)}{\partial s_c(t-1)} &= I" in out
    status, out, _ = run(capsys, "derive", "lstm", "--jacobian", "--format", "markdown")
    assert status == 0 and r"\begin{aligned}" in out
    assert (r"\frac{\partial C_{t}}{\partial C_{t-1}} &= \operatorname{diag}\left(f_{t}\right)"
            in out)
    assert run(capsys, "derive", "lstm", "--jacobian", "-o", str(tmp_path / "j.tex"))[0] == 0
    assert (tmp_path / "j.tex").read_text().startswith(r"\documentclass")


def test_cold_start_does_not_import_torch_or_matplotlib():
    code = ("import sys, io, contextlib\n"
            "from lstmsym.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['derive', 'peephole-lstm']) == 0\n"
            "heavy = [m for m in ('torch', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
