"""The kernel contract of every generated kernel (issue 2 item 7, issue 4 "bad input").

Each registered cell's kernel: imports only NumPy, exposes PARAMS/STATES/init_params/forward/
backward with the promised shapes and dtypes, rejects wrong shapes and dtypes with a ValueError
naming the array and the expected shape, lets NaN through, and has no overflow at |z| = 1e4.
Also the ``lstmsym codegen`` command: output, file writing, unknown cell.
"""
import ast
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from lstmsym import kernel_runtime
from lstmsym.cells import cell_names, get_cell
from lstmsym.cli import main
from lstmsym.codegen import generate_kernel, load_kernel
from lstmsym.errors import TruncationError
from lstmsym.schedule import parse_truncate, windows
from lstmsym.verification.numeric import reference_forward

CELLS = cell_names()


@lru_cache(maxsize=None)
def kernel(name):
    return load_kernel(name)


def sizes(k, I=3, H=4):
    p = k.init_params(I, H)
    return p, H


@pytest.mark.parametrize("name", CELLS)
def test_imports_only_numpy(name):
    tree = ast.parse(generate_kernel(name))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported == {"numpy", "sys"}       # NumPy and the standard library's sys only
    assert ast.get_docstring(tree).startswith(f"NumPy kernel for the {name!r} cell")


def test_runs_where_lstmsym_cannot_be_imported(tmp_path):
    path = tmp_path / "k.py"
    path.write_text(generate_kernel("peephole-lstm"))
    code = ("import sys; sys.modules['lstmsym'] = None\n"
            "import numpy as np, k\n"
            "p = k.init_params(3, 4); x = np.ones((2, 1, 3))\n"
            "out, cache = k.forward(p, x)\n"
            "print(k.backward(p, cache, {'h': np.ones((2, 1, 4))})[1].shape)")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(2, 1, 3)"


@pytest.mark.parametrize("name", CELLS)
def test_shapes_and_dtypes(name):
    k = kernel(name)
    cell = get_cell(name)
    assert tuple(k.STATES) == cell.state_names and k.STATES[0] == "h"
    if "C" in k.STATES:
        assert k.STATES[1] == "C"
    assert list(k.PARAMS) == [p.name for p in cell.params]
    I, H, T, B = 3, 4, 5, 2
    for dtype in (np.float64, np.float32):
        p = k.init_params(I, H, seed=1, dtype=dtype)
        assert set(p) == set(k.PARAMS)
        for name_, shape in k.PARAMS.items():
            assert p[name_].dtype == dtype
            assert p[name_].ndim == len(shape)
        x = np.random.default_rng(0).normal(size=(T, B, I)).astype(dtype)
        out, cache = k.forward(p, x)
        assert set(out) == set(k.STATES)
        for s in k.STATES:
            assert out[s].shape == (T, B, H) and out[s].dtype == dtype
        d_out = {s: np.ones((T, B, H), dtype) for s in k.STATES}
        dp, dx, ds0 = k.backward(p, cache, d_out)
        assert dx.shape == x.shape and dx.dtype == dtype
        assert all(dp[n].shape == p[n].shape and dp[n].dtype == dtype for n in p)
        assert all(ds0[s].shape == (B, H) and ds0[s].dtype == dtype for s in k.STATES)


@pytest.mark.parametrize("name", CELLS)
def test_float32_agrees_with_float64(name):
    k = kernel(name)
    p64 = k.init_params(3, 4, seed=2)
    x64 = np.random.default_rng(1).normal(size=(6, 2, 3))
    p32 = {n: v.astype(np.float32) for n, v in p64.items()}
    o64, c64 = k.forward(p64, x64)
    o32, c32 = k.forward(p32, x64.astype(np.float32))
    g64 = k.backward(p64, c64, {"h": np.ones_like(o64["h"])})
    g32 = k.backward(p32, c32, {"h": np.ones_like(o32["h"])})
    np.testing.assert_allclose(o32["h"], o64["h"], rtol=1e-4, atol=1e-5)
    for n in p64:
        np.testing.assert_allclose(g32[0][n], g64[0][n], rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("name", ["lstm", "gru-torch", "lstm1997-blocks"])
def test_non_contiguous_inputs_give_the_same_results(name):
    k = kernel(name)
    p = k.init_params(3, 4, seed=4)
    x = np.random.default_rng(4).normal(size=(5, 2, 3))
    d_out = {"h": np.ones((5, 2, 4))}
    expect = k.backward(p, k.forward(p, x)[1], d_out)
    for other in (np.asfortranarray(x), np.swapaxes(np.swapaxes(x, 0, 1).copy(), 0, 1)):
        got = k.backward(p, k.forward(p, other)[1], d_out)
        np.testing.assert_array_equal(got[1], expect[1])
        for n in p:
            np.testing.assert_array_equal(got[0][n], expect[0][n])


def test_init_params_seeded_and_1997_output_gate_bias():
    k = kernel("lstm1997")
    a, b, c = k.init_params(3, 4, seed=5), k.init_params(3, 4, seed=5), k.init_params(3, 4)
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert not np.array_equal(a["W_c_x"], c["W_c_x"])
    assert np.all(a["b_out"] < 0)
    kb = kernel("lstm1997-blocks")
    p = kb.init_params(3, 6)
    assert p["b_out"].shape == (3,) and np.all(p["b_out"] < 0)
    with pytest.raises(ValueError, match="multiple of 2"):
        kb.init_params(3, 5)


def test_forward_matches_the_equations_interpreted():
    for name in ("lstm", "gru", "lstm1997-blocks", "lstm-fgr"):
        k = kernel(name)
        p = k.init_params(2, 4, seed=3)
        rng = np.random.default_rng(3)
        x = rng.normal(size=(4, 3, 2))
        s0 = {s: rng.normal(size=(3, 4)) for s in k.STATES}
        out, _ = k.forward(p, x, s0)
        ref = reference_forward(name, p, x, s0)
        for s in k.STATES:
            np.testing.assert_allclose(out[s], ref[s], rtol=1e-12, atol=1e-13)


# ----- bad input -----------------------------------------------------------------------------
def test_bad_shapes_and_dtypes_name_the_array():
    k = kernel("lstm")
    p = k.init_params(3, 4)
    x = np.zeros((5, 2, 3))
    with pytest.raises(ValueError, match=r"x must be .*\(T, B, I\)"):
        k.forward(p, np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"params\['W_xf'\] has shape \(4, 3\), expected \(4, 2\)"):
        k.forward(p, np.zeros((5, 2, 2)))
    with pytest.raises(ValueError, match=r"params\['W_hf'\] has shape \(3, 4\), expected \(4, 4\)"):
        k.forward({**p, "W_hf": np.zeros((3, 4))}, x)
    with pytest.raises(ValueError, match=r"params\['W_hf'\] has dtype float32, expected float64"):
        k.forward({**p, "W_hf": p["W_hf"].astype(np.float32)}, x)
    with pytest.raises(ValueError, match=r"x has dtype int64"):
        k.forward(p, x.astype(np.int64))
    with pytest.raises(ValueError, match="params is missing 'b_o'"):
        k.forward({n: v for n, v in p.items() if n != "b_o"}, x)
    with pytest.raises(ValueError, match=r"state0\['C'\] has shape \(2, 5\), expected \(2, 4\)"):
        k.forward(p, x, {"C": np.zeros((2, 5))})
    with pytest.raises(ValueError, match="state0 has an unknown entry 'c'"):
        k.forward(p, x, {"c": np.zeros((2, 4))})
    _, cache = k.forward(p, x)
    with pytest.raises(ValueError, match=r"d_outputs\['h'\] has shape \(5, 2, 3\), expected \(5, 2, 4\)"):
        k.backward(p, cache, {"h": np.zeros((5, 2, 3))})
    with pytest.raises(ValueError, match=r"d_final\['C'\] has shape \(4,\), expected \(2, 4\)"):
        k.backward(p, cache, {}, d_final={"C": np.zeros(4)})


@pytest.mark.parametrize("bad, message", [
    (0, "k1 must be at least 1"), ((2, 0), "k2 must be at least 1"), (9, "longer than the sequence"),
    ("banana", "use None, k"), ((1, 2, 3), "use None, k"), (True, "use None, k")])
def test_bad_truncation(bad, message):
    k = kernel("lstm")
    p = k.init_params(3, 4)
    _, cache = k.forward(p, np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match=message):
        k.backward(p, cache, {}, truncate=bad)


def test_truncation_helpers_follow_the_schedule():
    for T in range(1, 9):
        for k1 in range(1, T + 1):
            for k2 in range(1, 10):
                assert kernel_runtime.parse_truncate((k1, k2), T) == parse_truncate((k1, k2), T)
                assert kernel_runtime.windows(T, k1, k2) == [
                    (w.end, w.loss_start, w.floor) for w in windows(T, k1, k2)]
        assert kernel_runtime.parse_truncate("1997", T) == parse_truncate("1997", T)
        assert kernel_runtime.parse_truncate(None, T) == parse_truncate(None, T)
        with pytest.raises(TruncationError):
            parse_truncate(T + 1, T)
        with pytest.raises(ValueError):
            kernel_runtime.parse_truncate(T + 1, T)


@pytest.mark.parametrize("name", CELLS)
def test_nan_propagates_and_large_preactivations_are_finite(name):
    k = kernel(name)
    p = k.init_params(3, 4)
    x = np.zeros((3, 2, 3))
    x[1, 0, 0] = np.nan
    with np.errstate(all="ignore"):
        out, cache = k.forward(p, x)
        d_params, _, _ = k.backward(p, cache, {"h": np.ones((3, 2, 4))})
    assert np.isnan(out["h"][1, 0]).any() and np.isfinite(out["h"][:, 1]).all()
    assert any(np.isnan(g).any() for g in d_params.values())
    # |z| up to 1e4: no overflow warning (pytest turns warnings into errors), no NaN
    big = np.full((3, 2, 3), 1e4 / 3)
    big[:, 1] *= -1
    p = {n: np.full_like(v, 1.0) if n.startswith(("W_x", "W_in_x", "W_c_x", "W_out_x", "W"))
         and v.ndim == 2 and v.shape[1] == 3 else v for n, v in p.items()}
    with np.errstate(all="raise"):
        out, cache = k.forward(p, big)
        grads = k.backward(p, cache, {"h": np.ones((3, 2, 4))})
    assert np.isfinite(out["h"]).all()
    assert all(np.isfinite(g).all() for g in grads[0].values())


def test_sigmoid_is_stable():
    z = np.array([-1e4, -50.0, 0.0, 50.0, 1e4, np.nan])
    with np.errstate(all="raise"):
        s = kernel_runtime.sigmoid(z)
    assert s[0] == 0.0 and s[2] == 0.5 and s[4] == 1.0 and np.isnan(s[5])
    np.testing.assert_allclose(kernel_runtime.sigmoid(np.array([0.3])), 1 / (1 + np.exp(-0.3)))


def test_docstring_examples_run():
    import doctest
    import lstmsym.codegen
    import lstmsym.printing.kernel
    import lstmsym.printing.numpy_printer
    for module in (lstmsym.codegen, lstmsym.printing.kernel, lstmsym.printing.numpy_printer):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# ----- the command -----------------------------------------------------------------------------
def test_codegen_command(tmp_path, capsys):
    assert main(["codegen", "gru"]) == 0
    printed = capsys.readouterr().out
    assert printed == generate_kernel("gru", command="lstmsym codegen gru")
    target = tmp_path / "gru_kernel.py"
    assert main(["codegen", "gru", "-o", str(target), "--dtype", "float32"]) == 0
    text = target.read_text()
    assert "DTYPE = np.float32" in text
    assert f"lstmsym codegen gru --dtype float32 -o {target}" in text


def test_codegen_bad_input(tmp_path, capsys):
    assert main(["codegen", "no-such-cell"]) == 2
    err = capsys.readouterr().err
    assert "unknown cell 'no-such-cell'" in err and "peephole-lstm" in err
    assert main(["codegen", "lstm", "-o", str(tmp_path / "missing" / "k.py")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ----- fast by construction (issue 4 item 2), read off the generated code -------------------------
IN_PLACE = ("copyto", "blocks")     # a copy into a buffer; a view of a buffer


def _loops(tree, function):
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    return [n for n in ast.walk(fn) if isinstance(n, ast.For) and
            isinstance(n.target, ast.Name) and n.target.id == "t"]


def _calls(node):
    body = node.body if isinstance(node, ast.For) else [node]
    return [n for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Call)]


def _name(call):
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


@pytest.mark.parametrize("name", CELLS)
def test_fast_structure(name):
    from lstmsym.codegen import plan_kernel
    plan = plan_kernel(name)
    tree = ast.parse(generate_kernel(name))
    per_step = [g for g in plan.groups if g.per_step]
    (forward_loop,) = _loops(tree, "forward")
    # one recurrent GEMM per step and group (the gates stacked), every call writes in place
    assert sum(_name(c) == "matmul" for c in _calls(forward_loop)) == len(per_step)
    for c in _calls(forward_loop):
        assert _name(c) not in ("empty", "zeros", "concatenate", "seq_matmul", "outer_sum")
        assert any(k.arg == "out" for k in c.keywords) or _name(c) in IN_PLACE, \
            ast.unparse(c)
    # the input projections of all timesteps: one GEMM before the loop
    forward = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
    assert sum(_name(c) == "seq_matmul" for c in _calls(forward)) == \
        sum(1 for g in plan.groups if not g.per_step)
    for mode in ("exact", "1997"):
        (loop,) = _loops(tree, f"backward_window_{mode}")
        for c in _calls(loop):
            assert _name(c) not in ("empty", "zeros", "concatenate", "outer_sum", "seq_matmul"), \
                ast.unparse(c)
            assert any(k.arg == "out" for k in c.keywords) or _name(c) in IN_PLACE, \
                ast.unparse(c)
        window = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                      and n.name == f"backward_window_{mode}")
        # matrix parameters: one GEMM per group over all steps of the window
        matrices = [p for p in get_cell(name).params if len(p.shape) == 2]
        assert 0 < sum(_name(c) == "outer_sum" for c in _calls(window)) <= len(matrices)
        assert "for b in" not in ast.unparse(window)


@pytest.mark.parametrize("name, forward_max, backward_max", [
    ("lstm", 12, 19), ("gru-torch", 14, 19), ("lstm-np", 12, 19)])
def test_gates_run_wide(name, forward_max, backward_max):
    """Gates f(W_h h_prev + W_x x + b), f sigmoid or tanh, run as one np.tanh over their
    slots of the stacked buffer (sigmoid rows halved) and their deltas as one pass over the
    stacked gradient buffer: no per-gate sigmoid helper, and the step's NumPy calls stay at
    most what this layout needs (the per-gate layout took 21/26 calls for the LSTM)."""
    tree = ast.parse(generate_kernel(name))
    (forward_loop,) = _loops(tree, "forward")
    assert not [c for c in _calls(forward_loop) if _name(c) == "sigmoid"]
    assert any(_name(c) == "tanh" and "_proj" in ast.unparse(c.args[0])
               for c in _calls(forward_loop))
    assert len(_calls(forward_loop)) <= forward_max
    (backward_loop,) = _loops(tree, "backward_window_exact")
    assert len(_calls(backward_loop)) <= backward_max
    source = ast.unparse(tree)
    assert "0.5 * W_h" in source          # the halved sigmoid rows of the stacked matrix


def test_load_kernel_reuses_one_file(tmp_path):
    import tempfile
    def ours():     # (other processes may make directories of their own meanwhile)
        return {p for p in Path(tempfile.gettempdir()).glob("lstmsym*") if p.is_dir()}
    before = ours()
    a, b = load_kernel("elman-tanh"), load_kernel("elman-tanh")
    assert a.__file__ == b.__file__
    assert ours() - before <= {Path(tempfile.gettempdir()) / "lstmsym-kernels"}
    path = tmp_path / "k.py"
    assert load_kernel("elman-tanh", path=path).__file__ == str(path)


def test_recycled_arrays_are_never_in_use():
    """empty_seq reuses an earlier call's memory only once nothing references it: results
    kept by the caller (outputs, a view of them, the cache) never change under a later call."""
    k = kernel("lstm")
    p = k.init_params(3, 4)
    rng = np.random.default_rng(5)
    x1, x2 = rng.standard_normal((6, 2, 3)), rng.standard_normal((6, 2, 3))
    out1, cache1 = k.forward(p, x1)
    h1, view = out1["h"].copy(), out1["h"][2:4]
    view_copy = view.copy()
    grads1 = k.backward(p, cache1, {"h": np.ones((6, 2, 4))})
    kept = {n: g.copy() for n, g in grads1[0].items()}
    del cache1
    for _ in range(3):                      # later calls, with their own caches dropped
        out2, cache2 = k.forward(p, x2)
        k.backward(p, cache2, {"h": np.ones((6, 2, 4))})
        del cache2
    np.testing.assert_array_equal(out1["h"], h1)
    np.testing.assert_array_equal(view, view_copy)
    assert all(np.array_equal(grads1[0][n], kept[n]) for n in kept)
    # once dropped, the memory is used again (no new array per call)
    import weakref
    spare = [weakref.ref(a) for a in k.SPARE]       # (a reference would keep them in use)
    _, cache4 = k.forward(p, x2)
    assert any(a() is cache4["h_seq"] for a in spare) and len(k.SPARE) <= k.SPARE_MAX
    free = kernel_runtime.empty_seq((5, 7), np.float64)
    assert free.shape == (5, 7) and free.dtype == np.float64
