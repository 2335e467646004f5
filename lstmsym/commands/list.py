"""``lstmsym list [--verbose]``: the registered cells and their sources."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("list", help="list the cells lstmsym knows")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="show each cell's description and source")
    p.set_defaults(run=run)


def run(args):
    from lstmsym.cells import cell_names, get_cell
    for name in cell_names():
        if not args.verbose:
            print(name)
            continue
        cell = get_cell(name)
        print(f"{name}: {cell.description}")
        print(f"    source: {cell.source}")
        print(f"    states: {', '.join(cell.state_names)}; parameters: "
              + ", ".join(p.name for p in cell.params))
    return 0
