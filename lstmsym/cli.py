"""The command line: parse arguments, call one library function, print. No derivation logic.

Each subcommand lives in ``lstmsym/commands/<name>.py`` with ``add_parser(subparsers)`` that
sets ``run``. Errors from lstmsym print as one line and exit 2; nothing prints a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from lstmsym.errors import LstmsymError

COMMANDS = ("list", "derive", "codegen", "check", "verify", "analyze")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmsym",
        description="Derive, print, code-generate and verify the gradients of recurrent cells.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"lstmsym.commands.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.run(args)
    except LstmsymError as exc:
        print(f"lstmsym: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lstmsym: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
