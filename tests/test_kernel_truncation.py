"""Truncated gradients of the kernels against independent computations (issue 3 item 3, issue 4 item 4).

The references here are written by hand from the papers' equations in plain NumPy (not from
the cell trees, not from any backward pass):

- truncate=k: finite differences of a forward pass whose state is held constant (detached) at
  the start of every chunk of k steps;
- truncate="1997": finite differences of a forward pass of the 1997 LSTM in which h_{t-1}
  enters the gates' and the cell's net inputs as a constant (Hochreiter & Schmidhuber 1997,
  Sec. 4 and App. A.2); only the constant error carousel sees the live s_c(t-1).

And the 1997 gradient differs from the exact one exactly where it should.
"""
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstmsym.codegen import load_kernel


@lru_cache(maxsize=None)
def kernel(name):
    return load_kernel(name)


def sig(z):
    return 1.0 / (1.0 + np.exp(-z))


# ----- hand-written forward steps: (params, x_t, state, recurrent input) -> new state ----------
def lstm_step(p, x, s, h_in):
    h, C = s["h"], s["C"]
    f = sig(x @ p["W_xf"].T + h_in @ p["W_hf"].T + p["b_f"])
    i = sig(x @ p["W_xi"].T + h_in @ p["W_hi"].T + p["b_i"])
    g = np.tanh(x @ p["W_xC"].T + h_in @ p["W_hC"].T + p["b_C"])
    C = f * C + i * g
    o = sig(x @ p["W_xo"].T + h_in @ p["W_ho"].T + p["b_o"])
    return {"h": o * np.tanh(C), "C": C}


def gru_torch_step(p, x, s, h_in):
    h = s["h"]
    r = sig(x @ p["W_xr"].T + h_in @ p["W_hr"].T + p["b_r"])
    z = sig(x @ p["W_xz"].T + h_in @ p["W_hz"].T + p["b_z"])
    n = np.tanh(x @ p["W_xn"].T + p["b_xn"] + r * (h_in @ p["W_hn"].T + p["b_hn"]))
    return {"h": (1 - z) * n + z * h}


def elman_tanh_step(p, x, s, h_in):
    return {"h": np.tanh(x @ p["W"].T + h_in @ p["U"].T + p["b"])}


def lstm1997_step(S):
    def step(p, x, s, h_in):
        """h_in: y^c(t-1) as the net inputs see it (a constant under the 1997 truncation)."""
        y_in = sig(x @ p["W_in_x"].T + h_in @ p["W_in_h"].T + p["b_in"])
        g = 4 * sig(x @ p["W_c_x"].T + h_in @ p["W_c_h"].T + p["b_c"]) - 2
        s_c = s["C"] + np.repeat(y_in, S, axis=-1) * g
        y_out = sig(x @ p["W_out_x"].T + h_in @ p["W_out_h"].T + p["b_out"])
        return {"h": np.repeat(y_out, S, axis=-1) * (2 * sig(s_c) - 1), "C": s_c}
    return step


STEPS = {"lstm": lstm_step, "gru-torch": gru_torch_step, "elman-tanh": elman_tanh_step,
         "lstm1997": lstm1997_step(1), "lstm1997-blocks": lstm1997_step(2)}


def run(step, p, x, s0, cut_every=None, frozen=None, base=None):
    """States for t = 0..T-1. ``cut_every=k``: the state entering steps k, 2k, ... is the
    constant ``base`` value. ``frozen``: the net inputs read h_{t-1} from ``base`` (whose
    entry -1 is the unperturbed initial state)."""
    s, out = dict(s0), []
    for t in range(x.shape[0]):
        if cut_every and t > 0 and t % cut_every == 0:
            s = {n: base[t - 1][n] for n in s}
        h_in = base[t - 1]["h"] if frozen else s["h"]
        s = step(p, x[t], s, h_in)
        out.append(s)
    return out


def loss(states, d_out, d_final):
    total = sum(float(np.sum(st[n] * d_out[n][t])) for t, st in enumerate(states) for n in st)
    return total + sum(float(np.sum(states[-1][n] * d_final[n])) for n in d_final)


def case(name, T, B, I, H, seed):
    k = kernel(name)
    rng = np.random.default_rng(seed)
    p = {n: v + rng.normal(0, 0.3, v.shape) for n, v in k.init_params(I, H, seed=seed).items()}
    x = rng.normal(0, 1, (T, B, I))
    s0 = {n: rng.normal(0, 0.5, (B, H)) for n in k.STATES}
    d_out = {n: rng.normal(0, 1, (T, B, H)) for n in k.STATES}
    d_final = {n: rng.normal(0, 1, (B, H)) for n in k.STATES}
    return k, p, x, s0, d_out, d_final


def fd_errors(name, p, x, s0, d_out, d_final, grads, seed, **how):
    """Relative errors of <grad, v> against central differences of the reference loss."""
    step = STEPS[name]
    base = run(step, p, x, s0) + [dict(s0)]     # base[-1]: the initial state
    rng = np.random.default_rng(seed + 1)
    d_params, d_x, d_state0 = grads

    def L(pp=p, xx=x, ss=s0):
        return loss(run(step, pp, xx, ss, base=base, **how), d_out, d_final)

    def fd(shift, e=1e-4):
        return (8 * (shift(e) - shift(-e)) - (shift(2 * e) - shift(-2 * e))) / (12 * e)

    errors = {}
    for n, value in p.items():
        v = rng.normal(size=value.shape)
        num, ana = fd(lambda e: L(pp={**p, n: value + e * v})), float(np.sum(d_params[n] * v))
        errors[n] = abs(num - ana) / max(abs(num), abs(ana), 1e-8)
    v = rng.normal(size=x.shape)
    num, ana = fd(lambda e: L(xx=x + e * v)), float(np.sum(d_x * v))
    errors["x"] = abs(num - ana) / max(abs(num), abs(ana), 1e-8)
    for n in s0:
        v = rng.normal(size=s0[n].shape)
        num = fd(lambda e: L(ss={**s0, n: s0[n] + e * v}))
        ana = float(np.sum(d_state0[n] * v))
        errors[f"state0[{n}]"] = abs(num - ana) / max(abs(num), abs(ana), 1e-8)
    return errors


@pytest.mark.parametrize("name", ["lstm", "gru-torch", "elman-tanh", "lstm1997"])
@given(T=st.integers(1, 7), k=st.integers(1, 7), B=st.integers(1, 3), seed=st.integers(0, 999))
def test_truncate_k_equals_a_forward_pass_detached_every_k_steps(name, T, k, B, seed):
    k = min(k, T)
    kern, p, x, s0, d_out, d_final = case(name, T, B, 3, 4, seed)
    _, cache = kern.forward(p, x, s0)
    grads = kern.backward(p, cache, d_out, d_final, truncate=k)
    errors = fd_errors(name, p, x, s0, d_out, d_final, grads, seed, cut_every=k)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("name", ["lstm1997", "lstm1997-blocks"])
@given(T=st.integers(1, 7), B=st.integers(1, 3), seed=st.integers(0, 999))
def test_1997_equals_a_forward_pass_with_constant_h_in_the_net_inputs(name, T, B, seed):
    kern, p, x, s0, d_out, d_final = case(name, T, B, 3, 4, seed)
    _, cache = kern.forward(p, x, s0)
    grads = kern.backward(p, cache, d_out, d_final, truncate="1997")
    errors = fd_errors(name, p, x, s0, d_out, d_final, grads, seed, frozen=True)
    assert max(errors.values()) < 1e-6, errors


def test_1997_differs_from_the_exact_gradient_where_it_should():
    kern, p, x, s0, d_out, d_final = case("lstm1997", 6, 2, 3, 4, seed=7)
    _, cache = kern.forward(p, x, s0)
    exact = kern.backward(p, cache, d_out, d_final)
    trunc = kern.backward(p, cache, d_out, d_final, truncate="1997")

    def rel(a, b):
        return np.linalg.norm(a - b) / np.linalg.norm(a)
    # over several steps every weight's gradient changes: errors no longer flow back via h
    for n in p:
        assert rel(exact[0][n], trunc[0][n]) > 1e-3, n
    assert rel(exact[1], trunc[1]) > 1e-3
    # h_{t-1} enters only net inputs: nothing reaches the initial h; the CEC still carries
    # error to the initial cell state
    assert not np.any(trunc[2]["h"]) and np.any(exact[2]["h"])
    assert np.linalg.norm(trunc[2]["C"]) > 0
    # one step: the weights' gradients are those of the exact gradient
    _, cache1 = kern.forward(p, x[:1], s0)
    d_out1 = {n: v[:1] for n, v in d_out.items()}
    e1 = kern.backward(p, cache1, d_out1, d_final)
    t1 = kern.backward(p, cache1, d_out1, d_final, truncate="1997")
    for n in p:
        np.testing.assert_allclose(t1[0][n], e1[0][n], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(t1[2]["C"], e1[2]["C"], rtol=1e-12)


@pytest.mark.parametrize("name", ["lstm", "peephole-lstm", "gru", "lstm1997-blocks",
                                  "lstm-fgr"])
@given(T=st.integers(1, 7), k1=st.integers(1, 7), extra=st.integers(0, 3))
def test_windows_reaching_the_start_give_the_full_gradient(name, T, k1, extra):
    """With k2 >= T + k1 every pass reaches step 0 (schedule.windows puts a short last chunk's
    floor where a full chunk's would be); the passes' losses add up to the full loss."""
    k1 = min(k1, T)
    kern, p, x, s0, d_out, d_final = case(name, T, 2, 3, 4, seed=T * 10 + k1)
    _, cache = kern.forward(p, x, s0)
    full = kern.backward(p, cache, d_out, d_final)
    win = kern.backward(p, cache, d_out, d_final, truncate=(k1, T + k1 + extra))
    for n in p:
        np.testing.assert_allclose(win[0][n], full[0][n], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(win[1], full[1], rtol=1e-10, atol=1e-12)
    for n in s0:
        np.testing.assert_allclose(win[2][n], full[2][n], rtol=1e-10, atol=1e-12)
