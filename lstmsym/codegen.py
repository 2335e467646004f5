"""Plan a NumPy sequence kernel from a cell's derivation and build it as a code tree.

The kernel printer works from the equations alone; nothing here is written for one cell.

1. ``normalize``: every affine map ``P v`` (P a parameter) becomes its own equation, a
   *projection* ``P_v = P v``; activations nested inside an equation get a name too (``tanh_C``).
   Extracted equations keep ``preact_of``, so the 1997 truncation cuts them as it cuts their
   parent.
2. ``plan_kernel``: projections that multiply the same vector form a *group*, computed as one
   product with the matrices stacked. The group of the input (x_t) is one GEMM over all
   timesteps before the loop; a group of a previous state (h_{t-1}) is one GEMM per step. The
   gradients of a group's members sit side by side in one (T, B, rows) buffer, so the recurrent
   gradient is one GEMM per step and the parameter gradients and d_x are one GEMM over all
   timesteps after the loop. Derivatives of activations are written through stored outputs.
3. ``build_module``: the code tree (printing/kernel.py) of the whole module, printed by
   ``generate_kernel``.

The kernel contract (PARAMS, STATES, init_params, forward, backward(..., truncate=...)) is in
issue 2 and README; ``load_kernel`` imports a generated module from a file.
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lstmsym import kernel_runtime as runtime
from lstmsym.cells import get_cell
from lstmsym.cells.spec import Equation
from lstmsym.derive import derive
from lstmsym.expr import Act, ActDeriv, Add, Grad, MatVec, Sym, map_children
from lstmsym.naming import code_name
from lstmsym.printing.numpy_printer import ActDerivOut, Code

DTYPES = ("float64", "float32")


# ----- 1. normalize ------------------------------------------------------------------------------
def _leaf_name(e) -> str:
    if isinstance(e, Sym):
        return code_name(e)
    names = []      # in the order they are written: r * h_prev -> r_h_prev
    for n in e.walk():
        if isinstance(n, Sym) and n.role != "param" and code_name(n) not in names:
            names.append(code_name(n))
    return "_".join(names) or "arg"


def normalize(cell):
    """The cell with projections and nested activations as their own equations.

    Returns ``(cell, parent)`` where ``parent`` maps each new symbol to the target of the
    equation it was taken from, so comments can quote the equations as the cell writes them.
    """
    taken = {s.name for s in (*cell.inputs, *cell.states, *cell.params)} | {
        e.target.name for e in cell.equations}
    equations, display = [], {}

    def new_sym(base, shape):
        name, k = base, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        return Sym(name, "var", shape)

    def named(e, base, eq):
        if isinstance(e, Sym):
            return e
        s = new_sym(base, e.shape)
        equations.append(Equation(s, e, preact_of=eq.preact_of, label="named by the kernel"))
        display[s] = eq.target
        return s

    def lift(e, eq, top=False):
        if isinstance(e, MatVec) and isinstance(e.mat, Sym) and e.mat.role == "param":
            vec = lift(e.vec, eq)
            vec = named(vec, _leaf_name(vec), eq)
            proj = MatVec(e.mat, vec, e.transpose)
            return named(proj, f"{e.mat.name}_{code_name(vec)}", eq)
        if isinstance(e, Act):
            arg = named(lift(e.arg, eq), _leaf_name(e.arg), eq)
            act = Act(e.fn, arg)
            return act if top else named(act, f"{e.fn.name}_{code_name(arg)}", eq)
        return map_children(e, lambda c: lift(c, eq))

    for eq in cell.equations:
        expr = lift(eq.expr, eq, top=True)
        equations.append(Equation(eq.target, expr, eq.preact_of, eq.label))
    return cell.replace(equations=tuple(equations)), display


# ----- 2. plan -----------------------------------------------------------------------------------
@dataclass
class Group:
    """Projections ``P_k v`` of one vector ``v``, computed as one product ``v @ W_stack.T``."""

    vec: Sym
    members: list                       # [(param Sym, projection Sym)]
    per_step: bool                      # False: the input, one GEMM for all timesteps
    name: str = ""
    slices: list = field(default_factory=list)     # (lo, hi) code per member
    rows: str = ""

    @property
    def weights(self) -> str:
        return self.members[0][0].name if len(self.members) == 1 else f"W_{self.name}_stack"

    @property
    def buffer(self) -> str:
        return f"{self.name}_proj"

    shared: "Group | None" = None      # a group whose gradient buffer this one reuses

    @property
    def dbuffer(self) -> str:
        return self.shared.dbuffer if self.shared else f"d{self.name}_proj"


@dataclass
class Plan:
    cell: object                 # the registered cell
    ncell: object                # normalized
    display: dict
    derivations: dict            # mode -> Derivation of ncell
    groups: list
    proj: dict                   # projection Sym -> (group, index)
    act_out: dict                # (fn name, argument Sym) -> output Sym
    alias: dict                  # var -> var whose gradient it equals
    home: dict                   # var -> (kind, group or name, index)
    copies: list                 # (group, index, source var)
    stored: set                  # forward vars kept for every step
    stored_groups: set
    dims: dict


def _dim_code(counts: dict) -> str:
    parts = []
    for d in sorted(counts):
        n = counts[d]
        parts.append(d if n == 1 else f"{n} * {d}")
    return " + ".join(parts) or "0"


def _activation_kinds(ncell) -> dict:
    """projection target -> 0 if it is a summand of the pre-activation of a sigmoid gate, 1 of
    a tanh gate (the order of the stacked gates; others are left out)."""
    acts = {eq.expr.arg: eq.expr.fn.name for eq in ncell.equations
            if isinstance(eq.expr, Act) and isinstance(eq.expr.arg, Sym)}
    kinds = {}
    for eq in ncell.equations:
        fn = acts.get(eq.target)
        if fn in ("sigmoid", "tanh"):
            for a in (eq.expr.args if isinstance(eq.expr, Add) else (eq.expr,)):
                kinds[a] = 0 if fn == "sigmoid" else 1
    return kinds


def plan_kernel(cell) -> Plan:
    cell = get_cell(cell)
    ncell, display = normalize(cell)
    derivations = {mode: derive(ncell, outputs=ncell.state_names, truncation=mode)
                   for mode in (None, "1997")}
    exact = derivations[None]

    # groups of projections sharing a vector, in order of first use
    groups, proj = {}, {}
    for eq in ncell.equations:
        e = eq.expr
        if isinstance(e, MatVec) and isinstance(e.mat, Sym) and e.mat.role == "param" \
                and not e.transpose and isinstance(e.vec, Sym):
            key = e.vec
            if key not in groups:
                groups[key] = Group(key, [], per_step=key.role != "input")
            proj[eq.target] = (groups[key], len(groups[key].members))
            groups[key].members.append((e.mat, eq.target))
    groups = list(groups.values())
    # sigmoid gates first, then tanh gates, then the rest (stable): the fix-up after the one
    # np.tanh over the stacked gates, 0.5 y + 0.5, is then one contiguous run of columns
    kind = _activation_kinds(ncell)
    for g in groups:
        g.members.sort(key=lambda m: kind.get(m[1], 2))
        for k, (_, target) in enumerate(g.members):
            proj[target] = (g, k)
    for g in groups:
        g.name = code_name(g.vec)
        counts, g.slices = {}, []
        for p, _ in g.members:
            lo = _dim_code(counts)
            counts[p.shape[0]] = counts.get(p.shape[0], 0) + 1
            g.slices.append((lo, _dim_code(counts)))
        g.rows = _dim_code(counts)

    act_out = {(eq.expr.fn.name, eq.expr.arg): eq.target for eq in ncell.equations
               if isinstance(eq.expr, Act) and isinstance(eq.expr.arg, Sym)}

    # gradients that are copies of another one
    alias = {}
    for v, ts in exact.grads.items():
        if v.role != "state" and len(ts) == 1 and isinstance(ts[0].expr, Grad) \
                and ts[0].expr.of.time == 0:
            alias[v] = ts[0].expr.of

    def resolve(v):
        while v in alias:
            v = alias[v]
        return v

    plan = Plan(cell, ncell, display, derivations, groups, proj, act_out, alias, {}, [], set(),
                set(), dict(cell.dims))
    plan.resolve = resolve
    plan.act_slot = {}          # activation output -> (group, slot) it lives in (kernel_build)
    plan.bias_folds = []        # (input slot, bias) added to the input projection (kernel_wide)
    plan.parent = display
    # homes of gradients: per-step groups first (their GEMM needs them inside the step)
    for g in sorted(groups, key=lambda g: not g.per_step):
        for k, (_, p) in enumerate(g.members):
            r = resolve(p)
            if r not in plan.home:
                plan.home[r] = ("group", g, k)
            else:
                plan.copies.append((g, k, r))
    # a group laid out like another one reads that one's gradient buffer (no copies)
    for g in groups:
        mine = [c for c in plan.copies if c[0] is g]
        if len(mine) != len(g.members) or len(mine) == 0:
            continue
        homes = [plan.home[r] for _, _, r in mine]
        other = homes[0][1]
        if other is not g and other.slices == g.slices and all(
                h[1] is other and h[2] == k for (_, k, _), h in zip(mine, homes)):
            g.shared = other
            plan.copies = [c for c in plan.copies if c[0] is not g]
    for term in _deferred_terms(plan):
        for n in term.walk():
            if isinstance(n, Grad) and n.of.at(0) not in plan.home:
                plan.home[n.of.at(0)] = ("seq", f"d{code_name(n.of.at(0))}_seq", None)

    # forward values the backward reads
    used = set()
    for mode in derivations:
        for e in _step_exprs(plan, mode) + _deferred_terms(plan):
            used |= {n for n in e.walk() if isinstance(n, Sym)}
    plan.used = {s.at(0) for s in used}
    for s in used:
        if s.role == "var":
            if s.at(0) in proj:
                plan.stored_groups.add(proj[s.at(0)][0].name)
            else:
                plan.stored.add(s.at(0))
    return plan


def rewrite(plan: Plan, e):
    """Derivatives through stored outputs, gradient copies resolved."""
    def fix(n):
        if isinstance(n, ActDeriv) and isinstance(n.arg, Sym):
            out = plan.act_out.get((n.fn.name, n.arg.at(0)))
            if out is not None and n.fn.deriv_output is not None:
                return ActDerivOut(n.fn, out.at(n.arg.time))
        if isinstance(n, Grad) and n.of.at(0) in plan.alias:
            return Grad(plan.resolve(n.of.at(0)).at(n.of.time))
        return map_children(n, fix)
    return fix(e)


def _deferred_terms(plan) -> list:
    """Parameter and input gradient terms (the same in every mode), rewritten."""
    d = plan.derivations[None]
    return [rewrite(plan, t.expr) for ts in (*d.params.values(), *d.inputs.values()) for t in ts]


def _step_exprs(plan, mode) -> list:
    d = plan.derivations[mode]
    out = [rewrite(plan, t.expr) for v, ts in d.grads.items() for t in ts]
    out += [rewrite(plan, t.expr) for ts in d.carry.values() for t in ts]
    return out


def collapse(plan: Plan, terms: list, product) -> list:
    """Replace the terms ``P_k^T g_k`` of a whole group by one stacked product.

    ``product(group)`` is the code of that product where it is used (a step or a window).
    """
    out = list(terms)
    for g in plan.groups:
        wanted = []
        for p, q in g.members:
            r = plan.resolve(q)
            wanted.append(MatVec(p, Grad(r), transpose=True))
        if all(w in out for w in wanted):
            for w in wanted:
                out.remove(w)
            made = product(g)
            out.append(made if not isinstance(made, str) else Code(made, g.vec.shape))
    return out


def generate_kernel(cell, dtype: str = "float64", command: str | None = None) -> str:
    """The source of the NumPy kernel module of ``cell``.

    Arguments:
        cell: a registered cell name or a ``Cell``.
        dtype: default dtype of ``init_params`` ("float64" or "float32"); forward/backward
            follow the dtype of the arrays they get.
        command: the command line named in the docstring as the way to regenerate the file.

    >>> source = generate_kernel("elman-tanh")
    >>> "def backward(params, cache, d_outputs, d_final=None, truncate=None):" in source
    True
    """
    from lstmsym.kernel_build import build_module
    from lstmsym.printing.kernel import KernelPrinter
    plan = plan_kernel(cell)
    if dtype not in DTYPES:
        from lstmsym.errors import LstmsymError
        raise LstmsymError(f"unknown dtype {dtype!r}; use one of: {', '.join(DTYPES)}")
    return KernelPrinter().doprint(build_module(plan, dtype, command))


def load_kernel(cell_or_name, path=None, dtype: str = "float64"):
    """Generate a cell's kernel, write it to a file and import it (importlib, no exec/eval).

    Arguments:
        cell_or_name: a registered cell name or a ``Cell``.
        path: where to write the module (default: a file named after the source's SHA-256
            in ``<tempdir>/lstmsym-kernels``, so the same kernel is written once).
        dtype: default dtype of the module's ``init_params``.

    Returns:
        the imported module (PARAMS, STATES, init_params, forward, backward).
    """
    import hashlib
    import tempfile
    from lstmsym.io import write_atomic
    cell = get_cell(cell_or_name)
    source = generate_kernel(cell, dtype)
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    stem = f"{cell.name.replace('-', '_')}_{digest}"
    if path is None:
        directory = Path(tempfile.gettempdir()) / "lstmsym-kernels"
        directory.mkdir(exist_ok=True)
        path = directory / f"{stem}.py"
    path = Path(path)
    if not path.exists() or path.read_text(encoding="utf-8") != source:
        write_atomic(path, source)
        if path.parent.name == "lstmsym-kernels":
            _prune_cache(path)
    modname = f"lstmsym_kernel_{stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module


def _prune_cache(new: Path, age: float = 3600.0) -> None:
    """Remove the cached modules of the same cell with another hash (an older lstmsym or cell
    definition) that are more than ``age`` seconds old, so the cache does not grow."""
    import re
    import time
    cell_stem = new.stem[:-17]
    pattern = re.compile(re.escape(cell_stem) + r"_[0-9a-f]{16}\.py")
    for old in new.parent.iterdir():
        if old != new and pattern.fullmatch(old.name):
            try:
                if time.time() - old.stat().st_mtime > age:
                    old.unlink()
            except OSError:
                pass        # another process removed it, or it cannot be removed: leave it


def helper_sources() -> list:
    """The runtime helpers copied into every kernel, as source text."""
    return [inspect.getsource(f) for f in runtime.HELPERS]


__all__ = ["generate_kernel", "load_kernel", "plan_kernel", "normalize", "Plan", "Group"]
