"""Benchmark: what else was tried for the kernels' speed, and why the printer does not do it.

Run by hand, like bench_kernels.py (README numbers are taken with the two OpenBLAS variables
this machine may set removed):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_alternatives.py
    python benchmarks/bench_alternatives.py --quick

The generated kernels (lstmsym codegen) spend their time beyond the GEMM floor on per-step
elementwise NumPy calls (activations, Hadamard products, adds). This script measures, at the
sizes of bench_kernels.py and with the same thread limits:

1. ``calls``: the cost of one NumPy call at the shapes of one step: on a contiguous (B, H)
   array, on a (B, H) gate slice of the stacked (B, 4H) buffer (strided rows), on the whole
   buffer, ``np.tanh``/``np.exp`` on it, and the step's recurrent GEMM for scale. Strided gate
   slices cost about twice a contiguous array of the same size; float64 ``np.tanh`` costs
   1.2-1.5 ns per element.
2. ``layout``: the generated ``lstm`` kernel (batch-major: a row per sequence, gates side by
   side in columns) against a hand-written feature-major LSTM (states (H, B), gates stacked in
   rows, so every gate slice is contiguous; sigmoid gates first, so their fix-up is one slice)
   and the GEMM floor, forward + backward. The feature-major code is checked against the
   kernel first. It is an experiment, not a kernel: it exists to measure the layout.
3. ``threads``: one step's forward elementwise chain of the LSTM on one thread against the
   same chain split over the two halves of the batch, the second half on a worker thread
   (NumPy releases the GIL inside its loops).

Measured (2 cores, 2 threads; see the README): neither alternative is a general win. The
feature-major layout ties or loses at (32,128,128,50) and (64,256,256,100) (0.99-1.11x the
kernel's time) and wins only at (16,512,512,50), where B = 16 (0.87-0.95x); its transposes at
the boundaries (the input projection, the outputs, the deltas for the parameter GEMMs) eat
what the contiguous gate slices save. The two-thread split costs 30-70 µs per step more than
one thread: handing work to a thread costs more than the work, and OpenBLAS's idle threads spin
on the same two cores.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kernels as bk  # noqa: E402  (the sibling script: sizes, floor, threads, loader)

from lstmsym.verification.oracle import rel_error  # noqa: E402


# --- 1. the cost of one call --------------------------------------------------------------------

def call_costs(B, H, dtype, number=400) -> dict:
    """name -> microseconds per call, best of 3 runs of ``number`` calls."""
    rng = np.random.default_rng(0)
    wide = rng.standard_normal((B, 4 * H)).astype(dtype)
    out = np.empty_like(wide)
    a, b, c = (rng.standard_normal((B, H)).astype(dtype) for _ in range(3))
    h, W = rng.standard_normal((B, H)).astype(dtype), rng.standard_normal((4 * H, H)).astype(dtype)
    cases = {
        "a*b (B,H) contiguous": lambda: np.multiply(a, b, out=c),
        "a*b (B,H) gate slices": lambda: np.multiply(wide[:, :H], wide[:, H:2 * H], out=out[:, :H]),
        "y*0.5 (B,3H) slice": lambda: np.multiply(wide[:, :3 * H], 0.5, out=out[:, :3 * H]),
        "a*b (B,4H) whole": lambda: np.multiply(wide, wide, out=out),
        "tanh (B,4H)": lambda: np.tanh(wide, out=out),
        "exp (B,4H)": lambda: np.exp(wide, out=out),
        "GEMM (B,H)x(H,4H)": lambda: np.matmul(h, W.T, out=out),
    }
    return {name: 1e6 * min(timeit.repeat(f, number=number, repeat=3)) / number
            for name, f in cases.items()}


# --- 2. a feature-major LSTM --------------------------------------------------------------------

class FeatureMajorLSTM:
    """LSTM forward + backward with states as (H, B) columns; gates stacked f, i, o, g in rows.

    Same equations as the generated ``lstm`` kernel (PyTorch's nn.LSTM): f, i, o sigmoid,
    g = tanh, C = f C_prev + i g, h = o tanh(C). Arrays are kept between calls (as the kernels
    do), so both sides are timed without page faults.
    """

    def __init__(self, params):
        order = ("f", "i", "o", "C")
        self.Wx = np.concatenate([params[f"W_x{g}"] for g in order])
        self.Wh = np.concatenate([params[f"W_h{g}"] for g in order])
        self.b = np.concatenate([params[f"b_{g}"] for g in order])
        H = self.Wh.shape[1]
        half = np.ones(4 * H, self.Wx.dtype)
        half[:3 * H] = 0.5                      # sigmoid(z) = 0.5 tanh(z / 2) + 0.5
        self.Wx_half, self.Wh_half, self.b_half = (self.Wx * half[:, None],
                                                   self.Wh * half[:, None], self.b * half)
        self.store = {}

    def buffer(self, name, shape, dtype):
        a = self.store.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self.store[name] = np.empty(shape, dtype)
        return a

    def forward(self, x):
        T, B, I = x.shape
        H, dt = self.Wh.shape[1], x.dtype
        P = self.buffer("P", (T, B, 4 * H), dt)
        np.matmul(x.reshape(T * B, I), self.Wx_half.T, out=P.reshape(T * B, 4 * H))
        P += self.b_half
        Z = self.buffer("Z", (T, 4 * H, B), dt)
        hs, Cs = self.buffer("hs", (T + 1, H, B), dt), self.buffer("Cs", (T + 1, H, B), dt)
        tC = self.buffer("tC", (T, H, B), dt)
        hs[0] = 0.0
        Cs[0] = 0.0
        rec, w = self.buffer("rec", (4 * H, B), dt), self.buffer("w", (H, B), dt)
        for t in range(T):
            np.matmul(self.Wh_half, hs[t], out=rec)
            z = Z[t]
            np.add(rec, P[t].T, out=z)
            np.tanh(z, out=z)
            np.multiply(z[:3 * H], 0.5, out=z[:3 * H])
            np.add(z[:3 * H], 0.5, out=z[:3 * H])
            f, i, o, g = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
            np.multiply(f, Cs[t], out=Cs[t + 1])
            np.multiply(i, g, out=w)
            np.add(Cs[t + 1], w, out=Cs[t + 1])
            np.tanh(Cs[t + 1], out=tC[t])
            np.multiply(o, tC[t], out=hs[t + 1])
        return hs[1:].transpose(0, 2, 1), (x, Z, hs, Cs, tC)

    def backward(self, cache, dh_out):
        x, Z, hs, Cs, tC = cache
        T, B, I = x.shape
        H, dt = self.Wh.shape[1], x.dtype
        dZ = self.buffer("dZ", (T, 4 * H, B), dt)
        dh_next, dC_next = self.buffer("dhn", (H, B), dt), self.buffer("dCn", (H, B), dt)
        dh_next[...] = 0.0
        dC_next[...] = 0.0
        dh, dC, w = (self.buffer(n, (H, B), dt) for n in ("dh", "dC", "w2"))
        deriv = self.buffer("deriv", (4 * H, B), dt)
        for t in range(T - 1, -1, -1):
            z, d = Z[t], dZ[t]
            f, i, o, g = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
            df, di, do, dg = d[:H], d[H:2 * H], d[2 * H:3 * H], d[3 * H:]
            np.add(dh_next, dh_out[t].T, out=dh)
            np.multiply(dh, tC[t], out=do)
            np.multiply(dh, o, out=w)
            np.multiply(tC[t], tC[t], out=dC)
            np.subtract(1.0, dC, out=dC)
            np.multiply(dC, w, out=dC)
            np.add(dC, dC_next, out=dC)
            np.multiply(dC, g, out=di)
            np.multiply(dC, i, out=dg)
            np.multiply(dC, Cs[t], out=df)
            np.multiply(z, z, out=deriv)
            np.subtract(z[:3 * H], deriv[:3 * H], out=deriv[:3 * H])
            np.subtract(1.0, deriv[3 * H:], out=deriv[3 * H:])
            np.multiply(d, deriv, out=d)
            np.matmul(self.Wh.T, d, out=dh_next)
            np.multiply(dC, f, out=dC_next)
        # the parameter GEMMs want time and batch together: transpose once
        dZb = self.buffer("dZb", (T, B, 4 * H), dt)
        np.copyto(dZb, dZ.transpose(0, 2, 1))
        hb = self.buffer("hb", (T, B, H), dt)
        np.copyto(hb, hs[:-1].transpose(0, 2, 1))
        dZ2 = dZb.reshape(T * B, 4 * H)
        dWh = dZ2.T @ hb.reshape(T * B, H)
        dWx = dZ2.T @ x.reshape(T * B, I)
        dx = (dZ2 @ self.Wx).reshape(T, B, I)
        return dWx, dWh, dZ2.sum(axis=0), dx


def check_feature_major(kernel, H=5, I=4, B=3, T=6):
    """The feature-major LSTM agrees with the generated kernel (float64), or raise."""
    params = kernel.init_params(I, H, seed=1)
    rng = np.random.default_rng(1)
    x, dh = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H))
    out, cache = kernel.forward(params, x)
    d_params, d_x, _ = kernel.backward(params, cache, {"h": dh})
    fm = FeatureMajorLSTM(params)
    h, fcache = fm.forward(x)
    dWx, dWh, db, dx = fm.backward(fcache, dh)
    order = ("f", "i", "o", "C")
    want_Wh = np.concatenate([d_params[f"W_h{g}"] for g in order])
    want_b = np.concatenate([d_params[f"b_{g}"] for g in order])
    for name, got, want in (("h", h, out["h"]), ("dx", dx, d_x), ("dW_h", dWh, want_Wh),
                            ("db", db, want_b)):
        err = rel_error(got, want)
        if err > 1e-12:
            raise SystemExit(f"feature-major LSTM disagrees with the kernel on {name}: {err:.2e}")


def time_layouts(kernel, dtype, B, I, H, T, repeats) -> dict:
    params = kernel.init_params(I, H, dtype=dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    dh = rng.standard_normal((T, B, H)).astype(dtype)
    fm = FeatureMajorLSTM(params)

    def fm_run():
        t0 = time.perf_counter()
        _, cache = fm.forward(x)
        t1 = time.perf_counter()
        fm.backward(cache, dh)
        return t1 - t0, time.perf_counter() - t1

    runners = {"kernel": bk.kernel_runner(kernel, params, x, dh), "feature-major": fm_run,
               "floor": bk.floor_runner("lstm", dtype, B, I, H, T)}
    return {n: v[0] for n, v in bk.time_interleaved(runners, repeats, pause=0.1).items()}


# --- 3. the elementwise chain on two threads ----------------------------------------------------

def time_threads(B, H, T, dtype, repeats) -> tuple:
    """Microseconds per forward step: the chain on one thread, and split over two."""
    rng = np.random.default_rng(0)
    W = (0.1 * rng.standard_normal((4 * H, H))).astype(dtype)
    P0 = rng.standard_normal((T, B, 4 * H)).astype(dtype)
    P = P0.copy()
    hs, Cs = np.zeros((T + 1, B, H), dtype), np.zeros((T + 1, B, H), dtype)
    tC, rec, w = np.empty((T, B, H), dtype), np.empty((B, 4 * H), dtype), np.empty((B, H), dtype)

    def chain(t, rows):
        p = P[t, rows]
        np.add(p, rec[rows], out=p)
        np.tanh(p, out=p)
        np.multiply(p[:, :3 * H], 0.5, out=p[:, :3 * H])
        np.add(p[:, :3 * H], 0.5, out=p[:, :3 * H])
        C, ww = Cs[t + 1, rows], w[rows]
        np.multiply(p[:, :H], Cs[t, rows], out=C)
        np.multiply(p[:, H:2 * H], p[:, 3 * H:], out=ww)
        np.add(C, ww, out=C)
        np.tanh(C, out=tC[t, rows])
        np.multiply(p[:, 2 * H:3 * H], tC[t, rows], out=hs[t + 1, rows])

    start, done = threading.Semaphore(0), threading.Semaphore(0)
    job = {"t": None}

    def worker():
        while True:
            start.acquire()
            if job["t"] is None:
                return
            chain(job["t"], slice(B // 2, None))
            done.release()

    def one():
        np.copyto(P, P0)
        t0 = time.perf_counter()
        for t in range(T):
            np.matmul(hs[t], W.T, out=rec)
            chain(t, slice(None))
        return time.perf_counter() - t0

    def two():
        np.copyto(P, P0)
        t0 = time.perf_counter()
        for t in range(T):
            np.matmul(hs[t], W.T, out=rec)
            job["t"] = t
            start.release()
            chain(t, slice(0, B // 2))
            done.acquire()
        return time.perf_counter() - t0

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        samples = {"one": [], "two": []}
        for _ in range(repeats):
            samples["one"].append(one())
            samples["two"].append(two())
    finally:
        job["t"] = None
        start.release()
        thread.join()
    return tuple(1e6 * statistics.median(samples[k]) / T for k in ("one", "two"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="first size only, 3 repeats")
    ap.add_argument("--sizes", nargs="+", type=bk.parse_size, default=None, metavar="B,I,H,T")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs (7)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parts", nargs="+", default=["calls", "layout", "threads"],
                    choices=["calls", "layout", "threads"])
    args = ap.parse_args(argv)
    sizes = args.sizes or (bk.SIZES[:1] if args.quick else bk.SIZES)
    repeats = args.repeats or (3 if args.quick else 7)
    limits = bk.set_threads(args.threads)  # noqa: F841  (held for the whole run)
    print("# bench_alternatives: what the kernels' elementwise work costs, and two alternatives")
    print("\n".join(bk.machine_lines(args.threads)) + "\n")
    kernel = bk.load_kernel("lstm", {})
    if "calls" in args.parts:
        print("## 1. one NumPy call at the shapes of a step, µs (best of 3)\n")
        rows = [(dt, size, call_costs(size[0], size[2], bk.DTYPES[dt]))
                for dt in ("float64", "float32") for size in sizes]
        names = list(rows[0][2])
        print("| dtype | B, I, H, T | " + " | ".join(names) + " |")
        print("|" + "---|" * (len(names) + 2))
        for dt, size, costs in rows:
            print(f"| {dt} | {', '.join(map(str, size))} | "
                  + " | ".join(f"{costs[n]:.1f}" for n in names) + " |", flush=True)
    if "layout" in args.parts:
        check_feature_major(kernel)
        print(f"\n## 2. layout: generated lstm kernel vs feature-major LSTM, forward + backward, "
              f"ms (median of {repeats}); agreement checked in float64 first\n")
        print("| dtype | B, I, H, T | kernel | feature-major | floor | kernel/floor "
              "| feature-major/floor |")
        print("|---|---|---|---|---|---|---|")
        for dt in ("float64", "float32"):
            for B, I, H, T in sizes:
                r = time_layouts(kernel, bk.DTYPES[dt], B, I, H, T, repeats)
                k, fm, f = r["kernel"], r["feature-major"], r["floor"]
                print(f"| {dt} | {B}, {I}, {H}, {T} | {1e3 * k:.2f} | {1e3 * fm:.2f} | "
                      f"{1e3 * f:.2f} | {k / f:.2f} | {fm / f:.2f} |", flush=True)
    if "threads" in args.parts:
        print(f"\n## 3. forward step (GEMM + elementwise chain), µs per step (median of "
              f"{repeats}): chain on one thread vs split over two\n")
        print("| dtype | B, I, H, T | one thread | two threads |")
        print("|---|---|---|---|")
        for dt in ("float64", "float32"):
            for B, I, H, T in sizes:
                one, two = time_threads(B, H, T, bk.DTYPES[dt], repeats)
                print(f"| {dt} | {B}, {I}, {H}, {T} | {one:.1f} | {two:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
