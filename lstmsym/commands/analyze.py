"""``lstmsym analyze <topic> [--out DIR] [--json FILE] [options]``: why recurrent nets forget.

Topics (lstmsym.analysis.topics): ``linear``, ``saturation``, ``jacobians``, ``errorflow``,
``truncation``. Prints a summary table; ``--json FILE`` writes every number (``-`` prints the
JSON instead of the table); ``--out DIR`` writes the figures as PNG and SVG.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from lstmsym.errors import LstmsymError


def _items(text, convert, what):
    """A comma-separated list of at least one item, each read by ``convert``."""
    try:
        items = tuple(convert(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        items = ()
    if not items:
        raise argparse.ArgumentTypeError(f"expected {what} separated by commas, got {text!r}")
    return items


def _floats(text):
    return _items(text, float, "numbers")


def _ints(text):
    return _items(text, int, "whole numbers")


def _names(text):
    return _items(text, str, "names")


def add_parser(sub):
    p = sub.add_parser("analyze", help="why recurrent nets forget: numbers and plots",
                       description=__doc__.split("\n\n")[1])
    topics = p.add_subparsers(dest="topic", required=True, metavar="TOPIC")

    def topic(name, help_):
        t = topics.add_parser(name, help=help_, description=help_)
        t.add_argument("--out", metavar="DIR", help="write figures (PNG and SVG) into DIR")
        t.add_argument("--json", metavar="FILE", help="write the numbers as JSON ('-': stdout)")
        t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        t.set_defaults(run=run)
        return t

    t = topic("linear", "linear recursion h(t) = W h(t-1) + C x(t) against lambda_max^t")
    t.add_argument("--matrix", metavar="W",
                   help="the recurrent matrix: inline '0.9,0.2;0,0.5' or a .npy/.txt file "
                        "(default: a random matrix at each --radius)")
    t.add_argument("--radius", type=_floats, default=(0.9, 1.0, 1.1),
                   help="spectral radii of the random matrices (default 0.9,1,1.1)")
    t.add_argument("--size", type=int, default=8, help="hidden size (default 8)")
    t.add_argument("--steps", type=int, default=60, help="time steps (default 60)")

    t = topic("saturation", "sigmoid/tanh/ReLU recursions: saturation, blow-up, memory over w")
    t.add_argument("--activations", type=_names, default=("sigmoid", "tanh", "relu"))
    t.add_argument("--w-min", type=float, default=-3.0)
    t.add_argument("--w-max", type=float, default=3.0)
    t.add_argument("--points", type=int, default=61, help="grid points in w (default 61)")
    t.add_argument("--steps", type=int, default=50)
    t.add_argument("--radius", type=_floats, default=(0.5, 1.0, 1.5),
                   help="spectral radii for the vector recursion (default 0.5,1,1.5)")
    t.add_argument("--size", type=int, default=8)

    t = topic("jacobians", "Jacobian chains dh_t/dh_(t-k) (Elman) against the LSTM's dC_t/dC_(t-k)")
    t.add_argument("--cells", type=_names,
                   default=("elman-tanh", "elman-sigmoid", "elman-relu", "lstm", "lstm1997"))
    t.add_argument("--k", type=int, default=50, help="steps back (default 50)")
    t.add_argument("--hidden", type=int, default=8)
    t.add_argument("--radius", type=float, default=1.0,
                   help="spectral radius of every hidden-to-hidden matrix (default 1)")
    t.add_argument("--truncation", choices=("none", "1997"), default="none",
                   help="derive with the 1997 truncation (default none)")
    t.add_argument("--forget-bias", type=float, default=None,
                   help="set the forget-gate bias b_f where a cell has one (default: random)")

    t = topic("errorflow", "Hochreiter's sum over paths against BPTT")
    t.add_argument("--units", type=int, default=3)
    t.add_argument("--q", type=int, default=6, help="largest number of steps back for the "
                                                    "path sum (default 6)")
    t.add_argument("--activation", default="sigmoid")
    t.add_argument("--weight-scale", type=float, default=4.0)
    t.add_argument("--lags", type=int, default=40, help="lags for the flow curves (default 40)")

    t = topic("truncation", "truncated BPTT (k2) on a long-lag task, with the generated kernels")
    t.add_argument("--cells", type=_names, default=("elman-tanh", "lstm", "lstm1997"))
    t.add_argument("--steps", type=int, default=60)
    t.add_argument("--k2", type=_ints, default=(1, 5, 10, 20, 40))
    t.add_argument("--hidden", type=int, default=8)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--forget-bias", type=float, default=2.0,
                   help="forget-gate bias where the cell has b_f (default 2)")


def _report(args):
    from lstmsym.analysis import topics
    if args.topic == "linear":
        matrix = _read_matrix(args.matrix) if args.matrix else None
        return topics.analyze_linear(matrix, args.radius, args.size, args.steps, args.seed)
    if args.topic == "saturation":
        return topics.analyze_saturation(args.activations, args.w_min, args.w_max, args.points,
                                         args.steps, args.radius, args.size, args.seed)
    if args.topic == "jacobians":
        return topics.analyze_jacobians(args.cells, args.k, args.hidden, args.radius,
                                        args.seed, None if args.truncation == "none"
                                        else args.truncation, args.forget_bias)
    if args.topic == "errorflow":
        return topics.analyze_errorflow(args.units, args.q, args.activation, args.weight_scale,
                                        args.lags, args.seed)
    return topics.analyze_truncation(args.cells, args.steps, args.k2, args.hidden, args.batch,
                                     args.seed, args.forget_bias)


def _read_matrix(text):
    from lstmsym.analysis.recursion import MatrixError, parse_matrix
    path = Path(text)
    if path.suffix in (".npy", ".txt", ".csv") or path.is_file():
        if not path.is_file():
            raise MatrixError(f"matrix file {path} does not exist")
        if path.suffix == ".npy":
            import numpy as np
            try:
                return np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise MatrixError(f"cannot read {path}: {exc}") from None
        rows = [r for r in path.read_text(encoding="utf-8").splitlines() if r.strip()]
        return parse_matrix(";".join(rows))
    return parse_matrix(text)


def _finite(obj):
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def run(args):
    from lstmsym.io import write_atomic
    if args.out and not Path(args.out).is_dir():
        raise LstmsymError(f"--out {args.out}: not a directory (create it first)")
    report = _report(args)
    text = json.dumps(_finite(report.data), indent=1, sort_keys=True)
    if args.json == "-":
        print(text)
    else:
        print("\n".join(report.lines))
        if args.json:
            write_atomic(args.json, text + "\n")
            print(f"wrote {args.json}", file=sys.stderr)
    if args.out:
        from lstmsym.analysis.plotting import save
        for stem, build in report.figures.items():
            for path in save(build(), args.out, stem):
                print(f"wrote {path}", file=sys.stderr)
    return 0
