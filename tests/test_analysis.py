"""lstmsym.analysis against independent facts: W^t C x by matrix powers, finite differences of
the forward pass, PyTorch autograd, the forget gates of the forward pass, exact identities."""
import numpy as np
import pytest
import torch

from lstmsym.analysis import (bptt_flow, check_error_flow, gate_product, jacobian_chain,
                              linear_response, path_sum, random_net, run_forward,
                              saturation_sweep, scalar_recursion, step_jacobians,
                              vector_recursion)
from lstmsym.analysis.evaluate import (dimension_sizes, random_params, stable_sigmoid,
                                       with_spectral_radius)
from lstmsym.analysis.recursion import MatrixError, parse_matrix
from lstmsym.cells import cell_names, get_cell
from lstmsym.errors import LstmsymError


# ----- linear recursion -------------------------------------------------------------------------
def test_linear_response_is_matrix_power_times_input():
    rng = np.random.default_rng(3)
    W, C, x0 = rng.standard_normal((4, 4)) / 2, rng.standard_normal((4, 2)), rng.standard_normal(2)
    r = linear_response(W, C, x0, steps=12)
    direct = [np.linalg.norm(np.linalg.matrix_power(W, t) @ C @ x0) for t in range(13)]
    np.testing.assert_allclose(r.norms, direct, rtol=1e-12)


@pytest.mark.parametrize("rho", [0.8, 1.0, 1.25])
def test_linear_growth_rate_is_the_spectral_radius(rho):
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((5, 5))
    eig = np.array([rho, 0.5 * rho, -0.3, 0.2, 0.1])       # known eigenvalues, one dominant
    W = Q @ np.diag(eig) @ np.linalg.inv(Q)
    r = linear_response(W, steps=200)
    assert r.rho == pytest.approx(rho, rel=1e-9)
    assert r.growth_rate == pytest.approx(rho, rel=1e-6)


def test_nilpotent_matrix_dies_out_without_a_division_by_zero():
    r = linear_response([[0.0, 1.0], [0.0, 0.0]], steps=3)     # h(0) = (1, 1), W^2 = 0
    assert r.rho == 0.0
    np.testing.assert_array_equal(r.norms, [np.sqrt(2.0), 1.0, 0.0, 0.0])
    assert r.prediction[-1] == 0.0 and all(np.isnan(r.prediction[:-1]))


def test_non_square_matrix_is_refused():
    with pytest.raises(MatrixError, match="square"):
        linear_response(np.ones((2, 3)))
    assert issubclass(MatrixError, LstmsymError)
    with pytest.raises(MatrixError, match="rows of different lengths"):
        parse_matrix("1,2;3")
    np.testing.assert_array_equal(parse_matrix("0.9, 0.1; 0 0.5"), [[0.9, 0.1], [0.0, 0.5]])


# ----- nonlinear recursions ----------------------------------------------------------------------
@pytest.mark.parametrize("act,f", [("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
                                   ("tanh", np.tanh), ("relu", lambda z: max(z, 0.0))])
def test_scalar_recursion_values_and_memory_derivative(act, f):
    w, steps = 0.9, 15
    r = scalar_recursion(act, w, steps=steps, x0=0.7, b=0.1)
    h, direct = 0.0, []
    for t in range(steps + 1):
        h = f(w * h + (0.7 if t == 0 else 0.0) + 0.1)
        direct.append(h)
    np.testing.assert_allclose(r.values, direct, rtol=1e-12)
    eps = 1e-6     # dh(t)/dx(0) against central differences in x(0)
    up = scalar_recursion(act, w, steps=steps, x0=0.7 + eps, b=0.1).values
    down = scalar_recursion(act, w, steps=steps, x0=0.7 - eps, b=0.1).values
    np.testing.assert_allclose(r.sensitivity, (np.array(up) - down) / (2 * eps),
                               rtol=1e-6, atol=1e-10)


def test_seed_001_claims_as_measured():
    sweep = saturation_sweep(ws=np.linspace(-3, 3, 25), steps=60)
    sig, tanh, relu = sweep["sigmoid"], sweep["tanh"], sweep["relu"]
    # "Sigmoid: saturates in a limited number of steps, regardless of w"
    assert all(r.settle_step is not None and r.settle_step <= 20 for r in sig)
    # "Relu: sensitive to w, can blow up": exactly the runs with w > 1 blow up or grow without end
    assert all(r.blowup_step is not None for r in relu if r.w >= 1.5)
    assert all(r.blowup_step is None for r in relu if r.w <= 1.0)
    # "Tanh activations are the most effective at storing memory" (no blow-up, longest memory)
    assert max(r.memory for r in tanh) > 3 * max(r.memory for r in sig)
    assert max(r.memory for r in tanh if abs(r.w) != 1.0) >= 10


def test_vector_recursion_jacobian_by_finite_differences():
    rng = np.random.default_rng(1)
    W = with_spectral_radius(rng.standard_normal((4, 4)), 1.2)
    x0 = rng.standard_normal(4)
    r = vector_recursion("tanh", W, x0=x0, steps=6)

    def h_at(x, t=6):
        h = np.zeros(4)
        for s in range(t + 1):
            h = np.tanh(W @ h + (x if s == 0 else 0))
        return h
    eps = 1e-6
    J = np.column_stack([(h_at(x0 + eps * e) - h_at(x0 - eps * e)) / (2 * eps)
                         for e in np.eye(4)])
    assert r.jacobian_norms[-1] == pytest.approx(np.linalg.norm(J, 2), rel=1e-6)


def test_vector_recursion_refuses_an_input_matrix_of_the_wrong_height():
    with pytest.raises(MatrixError, match="C must have 2 rows"):
        vector_recursion("tanh", np.eye(2), C=np.ones((3, 2)))


def test_stable_sigmoid_has_no_overflow():
    np.testing.assert_allclose(stable_sigmoid(np.array([-1e4, 0.0, 1e4])), [0.0, 0.5, 1.0])


# ----- per-step Jacobians from the derivation ---------------------------------------------------------
def _fd_step_jacobian(cell, fwd_values, slices, eps=1e-6):
    """dS_t/dS_{t-1} by central differences of the forward equations alone (no derivation)."""
    from lstmsym.analysis.evaluate import evaluate
    n = max(s.stop for s in slices.values())

    def step(stacked):
        values = dict(fwd_values)
        for s in cell.states:
            values[s.at(-1)] = stacked[slices[s.name]].reshape(-1, 1)
        for eq in cell.equations:
            values[eq.target.at(0)] = evaluate(eq.expr, values)
        return np.concatenate([values[s.at(0)].ravel() for s in cell.states])
    base = np.concatenate([fwd_values[s.at(-1)].ravel() for s in cell.states])
    return np.column_stack([(step(base + eps * e) - step(base - eps * e)) / (2 * eps)
                            for e in np.eye(n)])


@pytest.mark.parametrize("name", cell_names())
def test_derived_step_jacobian_matches_finite_differences(name):
    cell = get_cell(name)
    js, slices, fwd = step_jacobians(cell, 3, hidden_size=4, input_size=3, seed=5)
    fd = _fd_step_jacobian(cell, fwd[-1], slices)
    np.testing.assert_allclose(js[-1], fd, rtol=1e-6, atol=1e-8)


def test_elman_step_jacobian_is_diag_fprime_times_U():
    cell = get_cell("elman-tanh")
    js, _, fwd = step_jacobians(cell, 4, hidden_size=5, input_size=2, seed=2)
    values = fwd[-1]
    h = values[cell.state("h")].ravel()
    U = values[cell.param("U")]
    np.testing.assert_allclose(js[-1], (1 - h ** 2)[:, None] * U, rtol=1e-12, atol=1e-14)


def test_elman_chain_matches_torch_autograd():
    cell = get_cell("elman-tanh")
    sizes = dimension_sizes(cell, 4, 3)
    params = random_params(cell, sizes, seed=0, radius=1.0)
    xs = np.random.default_rng(1).standard_normal((8, 3))
    chain = jacobian_chain(cell, k_max=8, hidden_size=4, input_size=3, seed=0, radius=1.0)
    W, U, b = (torch.tensor(params[cell.param(n)]) for n in ("W", "U", "b"))
    X = torch.tensor(xs)

    def run(h0, k):            # h_{T-k} -> h_T with the same inputs as the analysis
        h = h0
        for s in range(8 - k, 8):
            h = torch.tanh(W @ X[s].reshape(-1, 1) + U @ h + b)
        return h.ravel()
    fwd = run_forward(cell, params, xs)
    for k in (1, 4, 8):
        h_start = torch.tensor(fwd[8 - k][cell.state("h").at(-1)])
        J = torch.autograd.functional.jacobian(lambda h0: run(h0, k), h_start)
        J = J.reshape(4, 4).numpy()
        assert chain.norms[k - 1] == pytest.approx(np.linalg.norm(J, 2), rel=1e-10)


def test_lstm1997_cec_is_exactly_one():
    chain = jacobian_chain("lstm1997", k_max=30, of="C", hidden_size=6)
    assert chain.cec_norms == [1.0] * 30
    assert chain.cec_products == [1.0] * 6
    # With Hochreiter & Schmidhuber's truncation the whole chain dC_T/dC_{T-k} is the identity.
    js, slices, _ = step_jacobians("lstm1997", 10, truncation="1997", hidden_size=6)
    prod = np.eye(js[0].shape[0])
    for j in js:
        prod = prod @ j
    np.testing.assert_array_equal(prod[slices["C"], slices["C"]], np.eye(6))


def test_lstm_cec_is_the_product_of_forget_gates():
    chain = jacobian_chain("lstm", k_max=12, of="C", hidden_size=5, seed=4)
    _, _, fwd = step_jacobians("lstm", 12, hidden_size=5, seed=4)
    np.testing.assert_allclose(chain.cec_products, gate_product(fwd, "f", 12), rtol=1e-12)


def test_negative_k_and_unknown_state_are_refused():
    with pytest.raises(LstmsymError, match="at least 1"):
        jacobian_chain("elman-tanh", k_max=-2)
    with pytest.raises(LstmsymError, match="no state 'C'"):
        jacobian_chain("elman-tanh", k_max=3, of="C")
    with pytest.raises(LstmsymError, match="unknown cell"):
        jacobian_chain("elman-tan", k_max=3)


# ----- Hochreiter's error flow -----------------------------------------------------------------
@pytest.mark.parametrize("act,q", [("sigmoid", 1), ("sigmoid", 4), ("tanh", 5)])
def test_path_sum_equals_bptt_and_autograd(act, q):
    net = random_net(3, 8, act, weight_scale=3.0, seed=2)
    W, V, X = (torch.tensor(a) for a in (net.W, net.V, net.xs))
    f = torch.sigmoid if act == "sigmoid" else torch.tanh

    def forward(n0):           # net(t-q) -> net(t), t = 8
        z = n0
        for s in range(8 - q + 1, 9):
            z = W @ f(z) + V @ X[s]
        return z
    J = torch.autograd.functional.jacobian(forward, torch.tensor(net.nets[8 - q])).numpy()
    # d theta_v(t-q)/d theta_u(t) = d net_u(t)/d net_v(t-q): indexed [v, u], J is [u, v]
    np.testing.assert_allclose(path_sum(net, q), J.T, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(bptt_flow(net, q), J.T, rtol=1e-10, atol=1e-15)


def test_literal_seed_indices_disagree_with_bptt():
    net = random_net(3, 6, "sigmoid", weight_scale=3.0, seed=2)   # W is not symmetric
    assert np.max(np.abs(path_sum(net, 3, literal_indices=True) - bptt_flow(net, 3))) > 1e-3


def test_error_flow_check_agrees_and_linear_units_blow_up():
    c = check_error_flow(units=3, max_q=4, lags=30, scales=(0.5, 2.0))
    assert c.max_abs_diff < 1e-14
    lin = c.flow_by_scale["identity"]
    assert lin[2.0][-1] > 1e3 and lin[0.5][-1] < 1e-3


@pytest.mark.parametrize("name", ["elman-sigmoid", "lstm", "lstm1997-blocks", "gru",
                                  "peephole-lstm"])
def test_step_jacobian_agrees_with_lstmsym_jacobian(name):
    """Our NumPy evaluation of the derived step against lstmsym.jacobian's exact SymPy one."""
    from lstmsym.jacobian import jacobian_matrix
    cell = get_cell(name)
    js, slices, fwd = step_jacobians(cell, 2, hidden_size=4, input_size=2, seed=7)
    values = {k: v for k, v in fwd[-1].items()
              if k.role == "param" or k.role == "input" or (k.role == "state" and k.time == -1)}
    for of in cell.state_names:
        for wrt in cell.state_names:
            ref = jacobian_matrix(cell, of, wrt, values, {"H": 4, "I": 2})
            np.testing.assert_allclose(js[-1][slices[of], slices[wrt]], ref,
                                       rtol=1e-10, atol=1e-12)


def test_truncated_input_gradient_is_exact_inside_the_window_and_zero_outside():
    from lstmsym.codegen import load_kernel
    kernel = load_kernel("lstm")
    params = kernel.init_params(3, 4, seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((15, 2, 3))
    _, cache = kernel.forward(params, x)
    d_h = np.zeros((15, 2, 4))
    d_h[-1] = 1.0
    _, full, _ = kernel.backward(params, cache, {"h": d_h})
    _, cut, _ = kernel.backward(params, cache, {"h": d_h}, truncate=(15, 6))
    np.testing.assert_allclose(cut[9:], full[9:], rtol=1e-12)
    assert not np.any(cut[:9]) and np.all(np.abs(full[:9]).sum(axis=(1, 2)) > 0)


def test_user_activation_cell_step_jacobian():
    """A cell written with the builder and a user activation (softsign) needs no new code."""
    import sympy
    from lstmsym.cells.spec import CellBuilder
    from lstmsym.ops import scalar_activation
    softsign = scalar_activation("softsign_an", lambda z: z / (1 + sympy.sqrt(1 + z ** 2)))
    b = CellBuilder("softsign-rnn")
    x, h = b.input("x"), b.state("h")
    b.let("h", softsign(b.param("W", ("H", "I")) @ x + b.param("U", ("H", "H")) @ h
                        + b.param("b", ("H",))))
    cell = b.build()
    js, slices, fwd = step_jacobians(cell, 3, hidden_size=3, input_size=2, seed=1)
    np.testing.assert_allclose(js[-1], _fd_step_jacobian(cell, fwd[-1], slices),
                               rtol=1e-6, atol=1e-8)
    chain = jacobian_chain(cell, k_max=3, hidden_size=3, input_size=2, seed=1)
    assert chain.norms[0] == pytest.approx(np.linalg.norm(js[-1], 2))
