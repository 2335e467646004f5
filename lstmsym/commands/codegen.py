"""``lstmsym codegen``: write a cell's standalone NumPy kernel (forward + BPTT, full or truncated).

    lstmsym codegen lstm                       the module on stdout
    lstmsym codegen lstm -o lstm_kernel.py     written atomically (no partial file)
    lstmsym codegen lstm --dtype float32       init_params defaults to float32

The work is done by lstmsym.codegen; this module only reads arguments and writes.
"""
from __future__ import annotations

import sys

from lstmsym.codegen import DTYPES, generate_kernel
from lstmsym.io import write_atomic


def add_parser(sub):
    p = sub.add_parser(
        "codegen", help="write a cell's NumPy kernel (forward and backward over sequences)",
        description="Generate a standalone, readable NumPy module for a cell: PARAMS, STATES, "
                    "init_params, forward(params, x, state0) and backward(params, cache, "
                    "d_outputs, d_final, truncate) with full BPTT, truncated BPTT (k or k1,k2) "
                    "and the 1997 truncation. It imports only NumPy.")
    p.add_argument("cell", help="a registered cell (see 'lstmsym list')")
    p.add_argument("-o", "--output", metavar="FILE.py",
                   help="write the module to FILE.py (default: print it)")
    p.add_argument("--dtype", choices=DTYPES, default="float64",
                   help="default dtype of init_params (forward/backward follow their inputs)")
    p.set_defaults(run=run)


def run(args):
    command = f"lstmsym codegen {args.cell}"
    if args.dtype != "float64":
        command += f" --dtype {args.dtype}"
    if args.output:
        command += f" -o {args.output}"
    source = generate_kernel(args.cell, dtype=args.dtype, command=command)
    if args.output:
        write_atomic(args.output, source)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(source)
    return 0
