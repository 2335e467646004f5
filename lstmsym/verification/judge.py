"""Judge a hand-derived gradient: correct (with the proof) or wrong (with the wrong terms).

``verify(cell, wrt, formula)`` compares a claimed ∇_{wrt}Div with lstmsym's derivation:

1. *Read.* A LaTeX string is parsed (lstmsym.parsing) and read with a notation profile; an
   lstmsym expression is taken as it is; a NumPy callable is checked numerically (numeric.py).
2. *Placeholders.* ``\\sigma'(.)`` next to a weight of a σ-gate is σ' at that gate's
   pre-activation; any other placeholder is read at the point of the cell that makes its term
   closest to a derived term. Every reading is reported.
3. *Proof.* Both sides are written in one basis (gradients of states at t+1 and the output parts
   at t), instantiated at small sizes (H = 2, I = 3: a missing transpose cannot hide behind
   square or symmetric matrices) with scalar symbols, σ and tanh as functions, and gates by
   their forward equations; ``expand(claimed - derived) == 0`` entrywise is the proof.
4. *Diagnosis* (only when they differ): both sides expanded at vector level into sums of
   products (terms.py), matched term by term: unmatched derived terms are missing, unmatched
   claimed terms extra, a claimed term that matches a derived one but for a factor or two is
   "wrong factor: X where Y belongs". Then a counterexample: numbers where the two differ.
"""
from __future__ import annotations

import time

import sympy

from lstmsym.cells import get_cell
from lstmsym.derive import derive
from lstmsym.errors import LstmsymError
from lstmsym.expr import (Act, ActDeriv, BlockSum, Expr, Grad, Had, MatVec, OutGrad, Outer,
                          Repeat, Sym, shift, substitute, terms)
from lstmsym.parsing.interpret import Claim, Hole, Reader
from lstmsym.parsing.reader import FormulaShapeError, parse
from lstmsym.parsing.reader import dims_text as _dims
from lstmsym.verification.diagnosis import diagnose, distance
from lstmsym.verification.profiles import get_profile, parse_maps
from lstmsym.verification.result import VerifyResult
from lstmsym.verification.scalar import ScalarEnv, block_sizes, instantiate
from lstmsym.verification.terms import Normaliser, tokens

SIZES = {"H": 2, "I": 3}


class Judge:
    """Everything the judge knows about one cell and one claimed gradient."""

    def __init__(self, cell, wrt, profile=None, convention=None, names=None, truncation=None):
        self.cell = get_cell(cell)
        self.profile = get_profile(profile)
        self.reader = Reader(self.cell, self.profile, convention, parse_maps(names))
        self.truncation = truncation
        self.d = derive(self.cell, truncation=truncation)
        self.norm = Normaliser(self.cell)
        self.states = set(self.cell.state_names)
        self.wrt = self.wrt_symbol(wrt) if wrt is not None else None

    # --- what is claimed, what is derived ------------------------------------------------------
    def wrt_symbol(self, wrt) -> Sym:
        if isinstance(wrt, Sym):
            return wrt
        if isinstance(wrt, Grad):
            return wrt.of
        return self.reader.wrt(str(wrt))

    def derived(self, d=None, keep=()) -> Expr:
        """∇_{wrt}Div from the derivation, with intermediates' gradients substituted away
        (except those named in ``keep``, e.g. the deltas a formula is written in)."""
        d = d or self.d
        w = self.wrt
        stop = self.states | set(keep)
        if w.role == "param":
            return d._expand(d.param_grad(w.name), stop)
        if w.role == "input":
            return shift(d._expand(d.input_grad(w.name), stop), w.time)
        return shift(d.closed_form(w.name, keep=keep), w.time)

    def level_a(self, e: Expr) -> Expr:
        """Gradients of intermediates (gates, pre-activations) written through the states'."""
        return self.d._expand(e, self.states)

    def basis(self, e: Expr) -> Expr:
        """Gradients of states at t or earlier replaced by their closed forms, until only
        gradients at t+1 and output parts remain: one basis for both sides."""
        for _ in range(8):
            olds = {g for g in e.walk() if isinstance(g, Grad) and g.of.time <= 0}
            if not olds:
                return e
            e = substitute(e, {g: shift(self.d.closed_form(g.of.name), g.of.time) for g in olds})
        raise LstmsymError("the gradients in the formula do not reduce to step t+1")

    def groups(self, e: Expr) -> list:
        """The terms of ``e`` as written, each with its expansion into products."""
        return [(t, self.norm.expand(t)) for t in terms(e)]

    # --- placeholders ----------------------------------------------------------------------------
    def points(self, fn):
        """Where the cell applies ``fn``: (point at t, gate target at t or None)."""
        out = []
        for eq in self.cell.equations:
            for node in eq.expr.walk():
                if isinstance(node, Act) and node.fn.name == fn.name and \
                        isinstance(node.arg, Sym):
                    gate = eq.target if node is eq.expr else None
                    if (node.arg, gate) not in out:
                        out.append((node.arg, gate))
        return out

    def weight_gates(self, toks) -> set:
        """The gates whose pre-activations the weights in a term belong to."""
        gates = set()
        for t in toks:
            p = t[1] if isinstance(t, tuple) and t[0] == "mat" else t
            if isinstance(p, Sym) and p.role == "param":
                for eq in self.cell.equations:
                    if eq.preact_of and p in eq.expr.syms():
                        gates.add(eq.preact_of)
        return gates

    def candidates(self, hole: Hole, toks) -> list:
        """Readings of a placeholder in a term, the profile's preferred ones first: next to a
        weight of a gate with the same activation, that gate's pre-activation; at the step of
        the term's gradient first."""
        times = sorted({t.of.time for t in toks if isinstance(t, (Grad, OutGrad))}, reverse=True)
        pref = times[0] if times else 0
        order = [pref] + [x for x in (0, 1, -1) if x != pref]
        pts = [(a, g) for a, g in self.points(hole.fn) if a.shape == hole.shape]
        gates = self.weight_gates(toks)
        ruled = [(a, g) for a, g in pts if g is not None and g.name in gates]
        if hole.deriv and ruled:
            pts = ruled
        if not hole.deriv:      # a gate would be written by its name: prefer tanh(C) to C~
            pts = sorted(pts, key=lambda p: p[1] is not None)
        out = []
        for tau in order:
            for arg, gate in pts:
                if hole.deriv:
                    out.append(ActDeriv(hole.fn, arg.at(tau)))
                elif gate is not None:
                    out.append(gate.at(tau))
                else:
                    out.append(Act(hole.fn, arg.at(tau)))
        return out

    def resolve_holes(self, claim_expr: Expr, derived_terms: dict) -> tuple:
        """Read each placeholder at the candidate point that brings its terms closest to
        derived terms (ties: the profile's preference). Returns (expression, readings)."""
        readings = {}
        expr = claim_expr
        for _ in range(64):
            terms = self.norm.expand(expr)
            holes = sorted({f for fs in terms for f in _atoms(fs) if isinstance(f, Hole)},
                           key=lambda h: h.ident)
            if not holes:
                return expr, readings
            hole = holes[0]
            mine = [(fs, c) for fs, c in terms.items() if hole in _atoms(fs)]
            toks = tokens(mine[0][0])
            best, best_score = None, None
            for cand in self.candidates(hole, toks):
                score = 0
                for fs, c in mine:
                    t = _subst_tokens(tokens(fs), hole, self.norm.expand(cand))
                    score += min((distance(t, c, tokens(dfs), dc) for dfs, dc in
                                  derived_terms.items()), default=99)
                if best_score is None or score < best_score:
                    best, best_score = cand, score
            if best is None:
                raise LstmsymError(f"no point of cell {self.cell.name!r} applies "
                                   f"{hole.fn.name}, so {hole!r} cannot be read")
            readings[hole] = best
            expr = substitute(expr, {hole: best})
        raise LstmsymError("too many placeholders")  # pragma: no cover

    # --- the proof ---------------------------------------------------------------------------------
    def env(self, exprs, env: ScalarEnv | None = None) -> ScalarEnv:
        """A scalar environment with the gates of every step ``exprs`` use bound to their
        forward equations (states, inputs, parameters and gradients stay free symbols)."""
        if env is None:
            env = ScalarEnv(block_sizes(self.cell, SIZES))    # two blocks: G >= 2
        times = {s.time for e in exprs for s in e.walk()
                 if isinstance(s, Sym) and s.role in ("var", "state", "input")}
        if not times:
            return env
        # the gates and intermediates of every step used follow from the forward equations;
        # the states stay free symbols (network_counterexample is where they are bound too)
        for tau in range(min(times), max(times) + 1):
            for eq in self.cell.equations:
                if eq.target.name in self.states:
                    continue
                key = eq.target.at(tau)
                if key not in env.values:
                    env.values[key] = instantiate(shift(eq.expr, tau), env)
        return env

    def prove(self, claimed: Expr, derived: Expr):
        """(equal?, env, claimed matrix, derived matrix) at the small sizes."""
        env = self.env([claimed, derived])
        a, b = instantiate(claimed, env), instantiate(derived, env)
        diff = (a - b).applyfunc(sympy.expand)
        return all(x == 0 for x in diff), env, a, b


def _atoms(factors):
    for f in factors:
        if isinstance(f, MatVec):
            yield f.mat
            yield from _atoms(f.vec.args if isinstance(f.vec, Had) else (f.vec,))
        elif isinstance(f, Outer):
            for side in (f.left, f.right):
                yield from _atoms(side.args if isinstance(side, Had) else (side,))
        elif isinstance(f, (Repeat, BlockSum)):
            yield from _atoms(f.arg.args if isinstance(f.arg, Had) else (f.arg,))
        else:
            yield f


def _subst_tokens(toks, hole, cand_terms):
    out = toks.copy()
    del out[hole]
    if len(cand_terms) == 1:
        fs = next(iter(cand_terms))
        out.update(tokens(fs))
    return out


# --- the public function -------------------------------------------------------------------------
def verify(cell, wrt, formula, profile=None, convention=None, names=None, truncation=None,
           seed: int = 0) -> VerifyResult:
    """Judge a claimed gradient ∇_{wrt}Div of ``cell``.

    Arguments:
        cell: a registered cell name or a ``Cell``.
        wrt: the quantity the gradient is taken with respect to: ``"C_t"``, ``"h_t"``,
            ``"x_t"``, ``"W_hf"``, ``"\\bar{f}_t"``, ``"C_{t-1}"`` (or a ``Sym``); ``None`` to
            take it from the formula's left-hand side.
        formula: LaTeX text, an lstmsym expression, a SymPy matrix in the scalar symbols of
            lstmsym.verification.scalar, or a NumPy callable (checked numerically).
        profile: notation profile name (``"default"``, ``"lecture"``) or ``Profile``.
        convention: ``"row"`` or ``"column"`` (default: the profile's).
        names: {your name: the cell's name}, or a list of ``"yours=cell's"`` strings.
        truncation: ``None`` (exact gradient) or ``"1997"`` (judge against the truncated rule).

    Returns:
        a ``VerifyResult`` (``.ok``, ``.verdict``, ``.issues``, ``.corrected``,
        ``.counterexample``); it prints as text and renders in Jupyter.

    >>> r = verify("lstm", "C_t", r"\\nabla_{h_t}Div \\circ o_t \\circ \\tanh'(C_t) "
    ...            r"+ \\nabla_{C_{t+1}}Div \\circ f_{t+1}")
    >>> r.verdict
    'correct'
    """
    start = time.perf_counter()
    if callable(formula) and not isinstance(formula, (str, Expr, sympy.Basic)):
        from lstmsym.verification.claims import verify_callable
        j = Judge(cell, wrt, profile, convention, names, truncation)
        return verify_callable(j, formula, seed, start)
    if isinstance(formula, sympy.MatrixBase) or (isinstance(formula, sympy.Basic)
                                                  and not isinstance(formula, Expr)):
        from lstmsym.verification.claims import verify_sympy
        j = Judge(cell, wrt, profile, convention, names, truncation)
        return verify_sympy(j, formula, start)
    if isinstance(formula, Expr):
        j = Judge(cell, wrt, profile, convention, names, truncation)
        claim = Claim(formula, None, [("", formula)], False, {})
        text = None
    else:
        text = str(formula)
        tree = parse(text)
        j = Judge(cell, None, profile, convention, names, truncation)
        claim = j.reader.read(tree)
        if wrt is None and claim.lhs is None:
            raise LstmsymError("say which gradient the formula is: --wrt C_t, or write "
                               "\\nabla_{C_t}\\mathrm{Div} = … ")
        j.wrt = j.wrt_symbol(wrt) if wrt is not None else claim.lhs
        if claim.lhs is not None and wrt is not None and claim.lhs != j.wrt:
            raise LstmsymError(f"the formula is a gradient with respect to {claim.lhs!r}, "
                               f"but --wrt says {j.wrt!r}")
    return judge_claim(j, claim, text, start, seed)


def judge_claim(j: Judge, claim: Claim, text, start, seed) -> VerifyResult:
    derived_a = j.derived()
    if claim.expr.shape != derived_a.shape:
        raise FormulaShapeError(
            f"the formula has shape {_dims(claim.expr.shape)} but the gradient with respect "
            f"to {j.wrt!r} has shape {_dims(derived_a.shape)}")
    # compare at the level the formula is written at: the deltas it uses kept standing, then
    # with intermediates written through the states, then everything through step t+1
    written = j.norm.contract(claim.expr)
    keep = {g.of.name for g in written.walk() if isinstance(g, Grad) and g.of.role == "var"}
    if keep:    # a formula in deltas: compare with the derivation in the gates' deltas
        keep |= {eq.target.name for eq in j.cell.equations if eq.preact_of}
    derived_0 = j.derived(keep=keep)
    written, readings = j.resolve_holes(written, j.norm.expand(derived_0))
    claimed = j.level_a(written)
    levels = [("as written", claimed, derived_a),
              ("in gradients at t+1", j.basis(claimed), j.basis(derived_a))]
    if keep:
        levels.insert(0, ("as written", written, derived_0))
    # equal as written (gradients of states free) is a proof; unequal is settled by a network
    # where the two differ; only when none is found is the costlier proof in one basis needed
    equal, env, a, b = j.prove(claimed, derived_a)
    basis, network = False, None
    if not equal:
        network = network_counterexample(j, j.basis(claimed), j.basis(derived_a),
                                         [claimed, derived_a], seed)
        if network is None:
            basis = True
            equal, env, a, b = j.prove(j.basis(claimed), j.basis(derived_a))
    result = VerifyResult(cell=j.cell.name, wrt=j.wrt, profile=j.profile.name,
                          convention=j.reader.convention, formula=text, claimed=claimed,
                          derived=derived_a, readings=readings, sizes=dict(env.sizes),
                          ok=equal, summed=claim.summed, truncation=j.truncation,
                          basis=basis)
    result.terms = [(src, result.latex(j.level_a(substitute(j.norm.contract(e), readings))))
                    for src, e in claim.terms if src]
    if not equal:
        # the level whose comparison names the fewest differences
        found = [diagnose(j.norm.expand(c), j.norm.expand(d), j.wrt, level,
                          j.reader.convention, j.groups(c), j.groups(d))
                 for level, c, d in levels]
        result.issues = min(found, key=len)
        result.counterexample = network
        if result.counterexample is None:
            result.counterexample = counterexample(j, env, a, b, [claimed, derived_a], seed)
            result.note = ("the two sides differ only when states at different steps are "
                           "taken as independent; no network values separating them were found")
        if j.truncation is None:
            result.note = " ".join(x for x in (result.note, truncation_note(j, claimed)) if x)
    result.seconds = time.perf_counter() - start
    return result


def truncation_note(j: Judge, claimed) -> str:
    try:
        jt = Judge(j.cell, j.wrt, j.profile, j.reader.convention, j.reader.names, "1997")
        derived_t = jt.derived()
        if derived_t == j.derived():
            return ""
        ok = jt.prove(jt.basis(claimed), jt.basis(derived_t))[0]
    except LstmsymError:
        return ""
    return ("it equals the 1997 truncated gradient (--truncation 1997); the terms above are "
            "where it differs from the exact gradient") if ok else ""


def network_counterexample(j: Judge, claimed, derived, shown, seed: int) -> dict | None:
    """Values of a real network at which the two sides differ, or None if none was found.

    Free: parameters, inputs, the states before the first step used, the output parts of the
    gradient and the gradients at t+1; every gate and later state follows by the forward
    equations, every gradient at t or earlier by the derivation.
    """
    import random
    exprs = [claimed, derived] + list(shown)
    syms = {n for e in exprs for n in e.walk() if isinstance(n, Sym)}
    times = [n.time for n in syms if n.role != "param"]
    lo, hi = (min(times), max(times)) if times else (0, 0)
    grads = {n for e in exprs for n in e.walk() if isinstance(n, (Grad, OutGrad))}
    for attempt in range(6):
        rnd = random.Random(seed + attempt)
        env = ScalarEnv(dict(j.env([]).sizes))

        def draw(key):
            rows = env.size(key.shape[0])
            cols = env.size(key.shape[1]) if len(key.shape) == 2 else 1
            env.values[key] = sympy.Matrix(rows, cols, lambda *ij: sympy.Rational(
                rnd.randint(-12, 12), 8))
        for p in j.cell.params:
            draw(p)
        for tau in range(lo, hi + 1):
            for x in j.cell.inputs:
                draw(x.at(tau))
        for st in j.cell.states:
            draw(st.at(lo - 1))
        for g in sorted(grads, key=repr):
            if isinstance(g, OutGrad) or g.of.time > 0:
                draw(g)
        for tau in range(lo, hi + 1):
            for eq in j.cell.equations:
                env.values[eq.target.at(tau)] = instantiate(shift(eq.expr, tau), env).evalf(30)
        for g in grads:
            if isinstance(g, Grad) and g.of.time <= 0:
                env.values[g] = instantiate(j.basis(g), env).evalf(30)
        av = instantiate(claimed, env).evalf(30)
        bv = instantiate(derived, env).evalf(30)
        if any(abs(x - y) > 1e-9 * (1 + abs(y)) for x, y in zip(av, bv)):
            return _report(env, shown, lambda n: env.leaf(n).evalf(6), av, bv, network=True)
    return None


def _report(env, exprs, leaf_value, av, bv, **extra) -> dict:
    """A counterexample: the value (``leaf_value(leaf)``, a matrix) of every leaf of ``exprs``
    by its LaTeX, and the two sides ``av``, ``bv``."""
    from lstmsym.printing.latex import latex
    leaves = {}
    for e in exprs:
        for n in e.walk():
            if isinstance(n, (Sym, Grad, OutGrad)) and n not in leaves:
                leaves[n] = _numbers(leaf_value(n))
    return {"sizes": dict(env.sizes), **extra,
            "values": {latex(k): v for k, v in sorted(leaves.items(), key=lambda kv: repr(kv[0]))},
            "claimed": _numbers(av), "derived": _numbers(bv)}


def counterexample(j: Judge, env: ScalarEnv, a, b, exprs, seed: int) -> dict:
    """Rational values for every free symbol at which the two sides differ (states treated as
    independent: used when no network values separate the two sides)."""
    import random
    syms = sorted((a.free_symbols | b.free_symbols), key=str)
    for attempt in range(10):
        rnd = random.Random(seed + attempt)
        vals = {s: sympy.Rational(rnd.randint(-12, 12), 8) for s in syms}
        av = a.xreplace(vals).evalf(15)
        bv = b.xreplace(vals).evalf(15)
        if any(abs(x - y) > 1e-9 for x, y in zip(av, bv)):
            break

    def leaf_value(n):
        m = instantiate(j.basis(n), env) if isinstance(n, Grad) else env.leaf(n)
        return m.xreplace(vals).evalf(6)
    return _report(env, exprs, leaf_value, av, bv)


def _numbers(m):
    rows = [[float(x) for x in m.row(i)] for i in range(m.rows)]
    if m.cols == 1:
        return [r[0] for r in rows]
    return rows


__all__ = ["verify", "Judge", "VerifyResult"]
