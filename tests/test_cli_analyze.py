"""``lstmsym analyze``: every topic prints numbers, writes JSON and PNG/SVG; bad input exits 2."""
import json
import subprocess
import sys

import pytest

from lstmsym.cli import main


def _run(capsys, *argv):
    code = main(["analyze", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_linear_json_and_figures(tmp_path, capsys):
    code, out, err = _run(capsys, "linear", "--steps", "40", "--out", str(tmp_path),
                          "--json", str(tmp_path / "linear.json"))
    assert code == 0
    assert "growth rate" in out
    data = json.loads((tmp_path / "linear.json").read_text())
    rates = [(r["spectral_radius"], r["growth_rate"]) for r in data["responses"]]
    assert len(rates) == 3
    for rho, rate in rates:
        assert rate == pytest.approx(rho, rel=1e-2)
    for ext in ("png", "svg"):
        assert (tmp_path / f"linear_recursion.{ext}").stat().st_size > 1000
    assert (tmp_path / "linear_recursion.png").read_bytes()[:4] == b"\x89PNG"


def test_linear_given_matrix_prints_its_eigenvalue(capsys):
    code, out, _ = _run(capsys, "linear", "--matrix", "0.5,0;0,0.25", "--steps", "30",
                        "--json", "-")
    assert code == 0
    data = json.loads(out)
    (r,) = data["responses"]
    assert r["spectral_radius"] == pytest.approx(0.5)
    assert r["norm"][30] == pytest.approx((0.5 ** 60 + 0.25 ** 60) ** 0.5, rel=1e-12)


def test_matrix_from_file(tmp_path, capsys):
    f = tmp_path / "w.txt"
    f.write_text("0.9 0\n0 0.1\n")
    code, out, _ = _run(capsys, "linear", "--matrix", str(f), "--steps", "20", "--json", "-")
    assert code == 0 and json.loads(out)["responses"][0]["spectral_radius"] == pytest.approx(0.9)


@pytest.mark.parametrize("argv,message", [
    (["linear", "--matrix", "1,2,3;4,5,6"], "must be square, got shape 2x3"),
    (["jacobians", "--k", "-3", "--cells", "elman-tanh"], "k = -3"),
    (["jacobians", "--cells", "elman-tahn", "--k", "3"], "unknown cell 'elman-tahn'"),
    (["errorflow", "--q", "-1"], "q = -1"),
    (["truncation", "--k2", "5,-2", "--cells", "lstm"], "k2 = -2"),
    (["linear", "--out", "/nonexistent/dir"], "not a directory"),
    (["errorflow", "--lags", "0"], "lags = 0"),
    (["jacobians", "--cells", "lstm", "--hidden", "0", "--k", "2"], "hidden size = 0"),
    (["truncation", "--cells", "lstm", "--steps", "5", "--batch", "0"], "batch = 0"),
    (["truncation", "--cells", "lstm1997-blocks", "--hidden", "3", "--steps", "5"],
     "hidden size 3 is not a multiple of 2"),
])
def test_bad_input_exits_2_with_a_clear_message(argv, message, capsys):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv,message", [
    (["linear", "--radius", ""], "expected numbers separated by commas"),
    (["jacobians", "--cells", " , "], "expected names separated by commas"),
    (["truncation", "--k2", "1,x"], "expected whole numbers separated by commas"),
])
def test_empty_or_unreadable_lists_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["analyze", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_saturation_and_errorflow_numbers(tmp_path, capsys):
    code, out, _ = _run(capsys, "saturation", "--points", "13", "--steps", "30",
                        "--json", str(tmp_path / "s.json"), "--out", str(tmp_path))
    assert code == 0 and "sigmoid" in out
    data = json.loads((tmp_path / "s.json").read_text())
    assert set(data["scalar"]) == {"sigmoid", "tanh", "relu"}
    assert (tmp_path / "saturation_scalar.svg").exists()
    assert (tmp_path / "saturation_vector.png").exists()
    code, out, err = _run(capsys, "errorflow", "--q", "4", "--lags", "20", "--json", "-")
    data = json.loads(out)
    assert code == 0 and data["max_abs_diff"] < 1e-14
    assert "error flow: q = 4" in err                      # progress on stderr


def test_saturation_figures_for_one_activation_outside_the_colour_table(tmp_path, capsys):
    code, out, err = _run(capsys, "saturation", "--activations", "g1997", "--points", "5",
                          "--steps", "10", "--out", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "saturation_scalar.png").stat().st_size > 1000
    assert (tmp_path / "saturation_vector.png").stat().st_size > 1000


def test_jacobians_cec(tmp_path, capsys):
    code, out, err = _run(capsys, "jacobians", "--cells", "elman-tanh,lstm1997", "--k", "20",
                          "--out", str(tmp_path), "--json", str(tmp_path / "j.json"))
    assert code == 0
    chains = {c["cell"]: c for c in json.loads((tmp_path / "j.json").read_text())["chains"]}
    assert chains["lstm1997"]["cec_norm"] == [1.0] * 20
    assert chains["elman-tanh"]["spectral_norm"][-1] < chains["elman-tanh"]["spectral_norm"][0]
    assert (tmp_path / "jacobian_chains.png").exists()
    assert "jacobians: lstm1997" in err


def test_truncation_with_kernels(tmp_path, capsys):
    code, out, err = _run(capsys, "truncation", "--cells", "elman-tanh", "--steps", "20",
                          "--k2", "3,20", "--hidden", "4", "--json", str(tmp_path / "t.json"),
                          "--out", str(tmp_path))
    assert code == 0, err
    (e,) = json.loads((tmp_path / "t.json").read_text())["effects"]
    assert e["input_grad_reach"] == [2, 19]
    assert e["param_grad_rel_error"][-1] < 1e-12          # k2 = T is full BPTT
    assert (tmp_path / "truncated_bptt.svg").exists()


def test_matplotlib_is_not_imported_by_lstmsym_or_derive():
    code = ("import sys, lstmsym, lstmsym.analysis; from lstmsym.cli import main; "
            "main(['derive', 'lstm']); "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
