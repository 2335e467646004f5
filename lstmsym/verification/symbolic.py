"""The proof: every derived backward formula equals SymPy's scalar derivative, exactly.

This sits at the end of the pipeline (DESIGN.md, "verify" (1)). For each small size (hidden 2
and 3 by default) the cell is instantiated with scalar symbols over two steps, t and t+1, by
lstmsym.verification.scalar. The scalar loss is

    L = sum_{s in (t, t+1)} sum_{o in outputs} <dout_{o_s}, o_s>  +  sum_S <dnext_S, S_{t+1}>,

upstream-gradient symbols times every output state at both steps, plus symbols standing for
whatever lies beyond t+1 (so nabla_{S_{t+1}} Div is as general as in a long sequence).

The true total derivatives are SymPy's:

- of an intermediate or state v at step s: a zero perturbation vector eps_v is added to v's
  value in the forward graph and L is differentiated with respect to it (then eps = 0);
- of a parameter at step t alone (its per-step gradient): the same, with a perturbation of the
  parameter used by step t only;
- of x_t and of S_{t-1} (what step t sends back): directly, they are leaves.

How, at a cost that stays small: each forward quantity (every entry of every equation's target
at t and t+1) is a *node* symbol with its definition, and each function application (sigma(u),
tanh(u), ...) an *atom* symbol; ``Atoms.diff`` differentiates L by SymPy's ``diff`` of each
definition in each of its symbols and, through an atom f(u), SymPy's derivative of f at u,
combined by the chain rule over this shared graph (memoised, so shared subexpressions are
differentiated once). A test checks this against one ``sympy.diff`` of the loss written out.

Each formula of ``derive(cell)`` (every gradient, carry, per-step parameter gradient and input
gradient) is instantiated with the true gradients put in for the ``Grad`` nodes it refers to,
and its difference from SymPy's derivative is expanded as a polynomial in independent symbols
(sparse arithmetic, ``_Sparse``): with nodes kept as symbols first, then written out through
their definitions. A zero polynomial is zero whatever values its symbols take, in particular
their actual values: a proof ("exact"). Only when both leave something nonzero (or a power with
a negative exponent stays after rational normalisation) is the difference evaluated at random
points with 50 significant digits, and the verdict says "numeric-fallback"; a real difference
fails the formula with the largest difference found.

``truncation="1997"``: Hochreiter & Schmidhuber's truncated gradient is the exact gradient of a
forward graph in which the previous states enter the net inputs (the equations with
``preact_of``) as separate constant symbols, set to the states' values after differentiation.
"""
from __future__ import annotations

import math
import random
import time
from fractions import Fraction

import mpmath
import sympy

from lstmsym.cells import get_cell
from lstmsym.derive import derive, grad_symbols
from lstmsym.errors import LstmsymError
from lstmsym.expr import Grad, OutGrad, Sym, shift, substitute
from lstmsym.verification.report import Verdict
from lstmsym.verification.scalar import ScalarEnv, instantiate

DIGITS = 50
POINTS = 4


# ----- which sizes -------------------------------------------------------------------------------
def instance_sizes(cell, hidden_sizes=(2, 3), input_size: int = 2) -> list:
    """The dimension sizes of each small instance.

    A dimension defined through the hidden size, ``dims = {"G": ("H", k)}`` (G = H / k, memory
    blocks of k cells), needs a hidden size that k divides: each requested size is raised to the
    next multiple of k, and a second multiple is added if that leaves a single size.
    """
    step = 1
    for base, k in cell.dims.values():
        if base != "H":
            raise LstmsymError(f"cell {cell.name!r}: dimension defined through {base!r}; "
                               "the proof knows sizes derived from H only")
        step = math.lcm(step, k)
    hs = sorted({-(-h // step) * step for h in hidden_sizes})
    if len(hidden_sizes) > 1 and len(hs) == 1:
        hs.append(hs[0] + step)
    out = []
    for h in hs:
        sizes = {"H": h, "I": input_size}
        for name, (base, k) in cell.dims.items():
            sizes[name] = sizes[base] // k
        out.append(sizes)
    return out


# ----- the formulas of a derivation --------------------------------------------------------------
def formulas(d) -> list:
    """(label, kind, key, vector expression) for every formula of a derivation, in print order."""
    out = []
    for v in d.order:
        out.append((f"grad {v.name}[t]", "grad", v, d.grad(v)))
    for s in d.cell.state_names:
        out.append((f"carry {s}[t-1]", "carry", s, d.carry_expr(s)))
    for p in d.cell.params:
        out.append((f"param {p.name} (step t)", "param", p.name, d.param_grad(p.name)))
    for x in d.cell.inputs:
        out.append((f"input {x.name}[t]", "input", x.name, d.input_grad(x.name)))
    return out


# ----- function atoms: sigma(u), tanh(u), ... as symbols -----------------------------------------
class Atoms:
    """Function applications and forward quantities as symbols, and SymPy's derivatives of them.

    ``atomize(e)`` replaces every function application f(u) in ``e`` by a symbol; applications
    with the same function and the same (expanded, atomized) arguments get the same symbol, so
    two expressions that are equal as polynomials in symbols and atoms are equal as functions.
    ``diff(e, w)`` is the total derivative of an atomized expression with respect to a base
    symbol ``w``: SymPy's ``diff`` with respect to each symbol of ``e``, and through an atom
    f(u) SymPy's derivative of f at u (sigma' = sigma(1-sigma), tanh' = 1-tanh^2, ...).
    ``define(node, expr)`` adds a node symbol that stands for ``expr``; ``diff`` goes through
    it as through an atom (its derivative is that of ``expr``).
    """

    def __init__(self):
        self.key_of, self.by_key, self.memo = {}, {}, {}
        self.order = []
        self._deps, self._dmemo, self._fprime = {}, {}, {}
        self._free_memo, self._local_memo = {}, {}
        self.defs = {}            # node symbol -> its defining (atomized) expression

    def define(self, node, expr):
        """A node symbol standing for ``expr``: differentiated through, kept as a symbol."""
        self.defs[node] = expr
        self.order.append(node)

    # --- building --------------------------------------------------------------------------------
    def atomize(self, e):
        if e.is_Atom:
            return e
        hit = self.memo.get(e)
        if hit is not None:
            return hit
        args = tuple(self.atomize(a) for a in e.args)
        if isinstance(e, sympy.Function):
            out = self.atom(e.func, args)
        else:
            out = e.func(*args) if args != e.args else e
        self.memo[e] = out
        return out

    def atom(self, func, args):
        key = (func, tuple(sympy.expand(a) for a in args))
        a = self.by_key.get(key)
        if a is None:
            a = sympy.Symbol(f"_atom{len(self.order)}")
            self.by_key[key] = a
            self.key_of[a] = key
            self.order.append(a)
        return a

    def is_atom(self, s):
        """Whether ``s`` is a function atom (not a node, not a base symbol)."""
        return s in self.key_of

    # --- differentiation -------------------------------------------------------------------------
    def deps(self, s) -> frozenset:
        """The base symbols an atom, a node (or a base symbol) depends on."""
        if s not in self.key_of and s not in self.defs:
            return frozenset((s,))
        hit = self._deps.get(s)
        if hit is None:
            inside = [self.defs[s]] if s in self.defs else self.key_of[s][1]
            hit = frozenset().union(*(self.deps(x) for a in inside for x in a.free_symbols))
            self._deps[s] = hit
        return hit

    def diff(self, e, w):
        """d e / d w for an atomized expression ``e`` and a base symbol ``w``."""
        out = []
        for s in self._free(e):
            if w not in self.deps(s):
                continue
            ds = sympy.Integer(1) if s == w else self._diff_atom(s, w)
            if ds != 0:
                out.append(self._local(e, s) * ds)
        return sympy.Add(*out)

    def _free(self, e):
        hit = self._free_memo.get(e)
        if hit is None:
            hit = self._free_memo[e] = tuple(sorted(e.free_symbols, key=str))
        return hit

    def _local(self, e, s):
        """SymPy's partial derivative of ``e`` in one of its symbols (the same for every w)."""
        hit = self._local_memo.get((e, s))
        if hit is None:
            hit = self._local_memo[(e, s)] = sympy.diff(e, s)
        return hit

    def _diff_atom(self, a, w):
        hit = self._dmemo.get((a, w))
        if hit is None and a in self.defs:
            hit = self._dmemo[(a, w)] = self.diff(self.defs[a], w)
        if hit is None:
            func, args = self.key_of[a]
            terms = []
            for i, u in enumerate(args):
                if any(w in self.deps(x) for x in self._free(u)):
                    terms.append(self._partial(a, i) * self.diff(u, w))
            hit = self._dmemo[(a, w)] = sympy.Add(*terms)
        return hit

    def _partial(self, a, i):
        """SymPy's derivative of the atom's function in its i-th argument, atomized."""
        hit = self._fprime.get((a, i))
        if hit is None:
            func, args = self.key_of[a]
            zs = sympy.symbols(f"_z0:{len(args)}", real=True)
            d = sympy.diff(func(*zs), zs[i])
            hit = self._fprime[(a, i)] = self.atomize(d.xreplace(dict(zip(zs, args))))
        return hit

    # --- evaluation -----------------------------------------------------------------------------
    def values(self, point: dict, digits: int) -> dict:
        """Values of the base symbols in ``point`` and of every node and atom they determine."""
        values = dict(point)
        for a in self.order:
            if a in self.defs:
                if all(x in values for x in self.defs[a].free_symbols):
                    values[a] = sympy.N(self.defs[a].xreplace(values), digits + 10)
                continue
            func, args = self.key_of[a]
            if not all(x in values for u in args for x in u.free_symbols):
                continue
            values[a] = sympy.N(func(*[u.xreplace(values) for u in args]), digits + 10)
        return values

    def evaluate(self, entries, point: dict, digits: int):
        """Values of atomized expressions at ``point`` (base symbol -> number)."""
        values = self.values(point, digits)
        return [sympy.N(e.xreplace(values), digits) for e in entries]


# ----- one small instance: the two-step graph and its true gradients -----------------------------
class Instance:
    """The cell at one size over steps t and t+1, with SymPy's derivatives of the loss."""

    def __init__(self, cell, sizes: dict, outputs, truncation=None):
        self.cell, self.sizes, self.truncation = cell, sizes, truncation
        self.env = ScalarEnv(sizes)
        self.atoms = Atoms()
        self.eps = {}          # (name, step) -> perturbation matrix
        self.consts = {}       # constant symbol -> the value it stands for (1997 truncation)
        self._grads, self._settled, self._settle_sym = {}, None, {}
        self._holders, self._holder_value = {}, {}
        self._converters, self._unfolded = {}, {}
        self._forward()
        self._loss(outputs)

    def _perturbation(self, key, like):
        m = self.env.fresh(Sym(f"eps_{key[0]}_{key[1]}", "const", like.shape))
        self.eps[key] = m
        for e in m:
            self._settle_sym[e] = sympy.Integer(0)
        return m

    def _forward(self):
        env, cell = self.env, self.cell
        base = {p: env.leaf(p) for p in cell.params}
        for p in cell.params:       # step t's own copy of every parameter
            env.values[p] = base[p] + self._perturbation((p.name, "param"), p)
        for step in (0, 1):
            if step == 1:
                env.values.update(base)
            for eq in cell.equations:
                expr = shift(eq.expr, step)
                if self.truncation == "1997" and eq.preact_of is not None:
                    expr = substitute(expr, self._constants(step))
                v = eq.target.at(step)
                value = instantiate(expr, env) + self._perturbation((v.name, step), v)
                node = env.fresh(Sym(f"node_{v.name}", "var", v.shape, step))
                for n, e in zip(node, value):
                    self.atoms.define(n, self.atoms.atomize(e))
                env.values[v] = node
        for s in cell.states:
            env.leaf(s.at(-1))

    def _constants(self, step):
        """Previous states as constants in the net inputs of step ``step`` (1997 truncation)."""
        mapping = {}
        for s in self.cell.states:
            prev = s.at(step - 1)
            const = Sym(f"{s.name}_const{step}", "const", s.shape)
            for c, v in zip(self.env.leaf(const), self.env.leaf(prev)):
                self.consts[c] = v
            mapping[prev] = const
        return mapping

    def _loss(self, outputs):
        env = self.env
        loss = []
        for step in (0, 1):
            for name in outputs:
                s = self.cell.state(name).at(step)
                loss.extend(g * v for g, v in zip(env.leaf(OutGrad(s)), env.values[s]))
        for s in self.cell.states:
            beyond = env.fresh(Sym(f"dnext_{s.name}", "const", s.shape))
            loss.extend(g * v for g, v in zip(beyond, env.values[s.at(1)]))
        self.loss = sympy.Add(*loss)

    # --- settling: perturbations to zero, constants to their values ------------------------------
    def settle(self, e):
        subs = {}
        for s in e.free_symbols:
            r = self._settled_symbol(s)
            if r is not s:
                subs[s] = r
        return e.xreplace(subs) if subs else e

    def _settled_symbol(self, s):
        hit = self._settle_sym.get(s)
        if hit is not None:
            return hit
        if s in self.consts:
            out = self.settle(self.consts[s])
        elif self.atoms.is_atom(s):
            func, args = self.atoms.key_of[s]
            settled = tuple(self.settle(a) for a in args)
            out = s if settled == args else self.atoms.atomize(func(*settled))
        else:
            out = s
        self._settle_sym[s] = out
        return out

    # --- the two sides ---------------------------------------------------------------------------
    def truth(self, kind, key) -> sympy.Matrix:
        """SymPy's derivative of the loss for a formula (kind, key) or a Grad node ("grad").

        Unsettled: perturbations and constants still stand; ``compare`` settles them.
        """
        if (kind, key) not in self._grads:
            if kind == "grad":
                wrt = self.eps[(key.name, key.time)]
            elif kind == "carry":
                wrt = self.env.leaf(self.cell.state(key).at(-1))
            elif kind == "param":
                wrt = self.eps[(key, "param")]
            else:
                wrt = self.env.leaf(next(x for x in self.cell.inputs if x.name == key))
            self._grads[(kind, key)] = wrt.applyfunc(lambda w: self.atoms.diff(self.loss, w))
        return self._grads[(kind, key)]

    def claimed(self, expr) -> sympy.Matrix:
        """A derived formula at this size; each Grad it refers to is a placeholder symbol that
        stands for SymPy's derivative (``compare`` puts the derivative in)."""
        if self._settled is None:
            self._settled = {k: v.applyfunc(self.settle) for k, v in self.env.values.items()
                             if isinstance(k, (Sym, OutGrad))}
        values = dict(self._settled)
        for g in grad_symbols(expr):
            if isinstance(g, Grad):
                if (g.of.name, g.of.time) not in self.eps:
                    raise LstmsymError(f"formula refers to {g!r}, outside steps t and t+1")
                values[g] = self._placeholder(g)
        return instantiate(expr, ScalarEnv(self.sizes, values)).applyfunc(self.atoms.atomize)

    def _placeholder(self, g):
        if g not in self._holders:
            m = ScalarEnv(self.sizes, prefix="_true_").fresh(g)
            for p, t in zip(m, self.truth("grad", g.of)):
                self._holder_value[p] = t
            self._holders[g] = m
        return self._holders[g]

    def compare(self, claimed: sympy.Matrix, truth: sympy.Matrix) -> tuple:
        """(ok, method, max difference or None) of a claimed value against the truth.

        Exact, first with the forward quantities as symbols (level 1: a zero polynomial in
        independent symbols is zero for their actual values too), then with every quantity
        written out through its definition (level 2); numeric evaluation only after both.
        """
        if claimed.shape != truth.shape:
            return False, "shape", None
        diff = [c - t for c, t in zip(claimed, truth)]
        if all(e == 0 for e in diff):
            return True, "exact", None
        for level in (1, 2):
            polys = self._polynomials(diff, level)
            if polys is not None and not any(polys):
                return True, "exact", None
        if polys is not None:
            # nonzero in independent atoms: equal only through a relation between function
            # values (tanh(2u) = 2 tanh(u)/(1 + tanh(u)^2) ...), which evaluation decides
            worst = self._numeric_max_polys([p for p in polys if p], self._converters[2])
        else:
            full = [self._unfold(self.settle(e.xreplace(self._holder_value))) for e in diff]
            if all(sympy.cancel(sympy.together(sympy.expand(e))) == 0 for e in full):
                return True, "exact", None
            worst = self.numeric_max(full)
        ok = worst < 10.0 ** (-(DIGITS - 15))
        # "numeric-fallback": held only numerically, and says so; "numeric": the difference
        # measured at random points, for a formula that fails
        return ok, "numeric-fallback" if ok else "numeric", worst

    def _polynomials(self, entries, level):
        """Each entry, settled and with the derivatives put in, as an expanded polynomial in
        symbols and atoms (level 1: and forward quantities); None if an entry is not a
        polynomial (a power with a negative or fractional exponent)."""
        conv = self._converters.get(level)
        if conv is None:
            conv = self._converters[level] = _Sparse(lambda x: self._resolve(x, level))
        try:
            return [conv(e) for e in entries]
        except _NotPolynomial:
            return None

    def _resolve(self, s, level):
        """What symbol ``s`` stands for, settled: None if it stands for itself."""
        if s in self._holder_value:
            return self._holder_value[s]
        if level == 2 and s in self.atoms.defs:
            return self.settle(self.atoms.defs[s])
        r = self._settled_symbol(s)
        return None if r is s else r

    def _unfold(self, e):
        """``e`` with every node replaced by its settled definition, recursively."""
        nodes = {x for x in e.free_symbols if x in self.atoms.defs}
        if not nodes:
            return e
        return e.xreplace({n: self._unfold_node(n) for n in nodes})

    def _unfold_node(self, n):
        hit = self._unfolded.get(n)
        if hit is None:
            hit = self._unfolded[n] = self._unfold(self.settle(self.atoms.defs[n]))
        return hit

    def numeric_max(self, entries, points: int = POINTS, seed: int = 0) -> float:
        """The largest |entry| at random points (symbols uniform in [-1.5, 1.5])."""
        rng = random.Random(seed)
        free = sorted(set().union(*(self.atoms.deps(s) for e in entries
                                    for s in e.free_symbols)), key=str)
        worst = 0.0
        for _ in range(points):
            point = {s: sympy.Rational(rng.randint(-1500, 1500), 1000) for s in free}
            try:
                values = self.atoms.evaluate(entries, point, DIGITS)
                worst = max([worst] + [float(abs(v)) for v in values])
            except (TypeError, ValueError):     # e.g. an unevaluated Derivative left by SymPy
                return float("inf")
        return worst

    def _numeric_max_polys(self, polys, conv, points: int = POINTS, seed: int = 0) -> float:
        """``numeric_max`` for expanded polynomials: atoms evaluated, then the polynomial."""
        gens = conv.symbols
        free = sorted(set().union(*(self.atoms.deps(g) for g in gens)), key=str)
        rng = random.Random(seed)
        worst = 0.0
        with mpmath.workdps(DIGITS):
            for _ in range(points):
                point = {s: sympy.Rational(rng.randint(-1500, 1500), 1000) for s in free}
                try:
                    known = self.atoms.values(point, DIGITS)
                    xs = [mpmath.mpf(sympy.Float(known[g], DIGITS + 10)) for g in gens]
                except (TypeError, ValueError, KeyError):
                    return float("inf")
                for p in polys:
                    total = mpmath.mpf(0)
                    for monom, coeff in p.items():
                        term = mpmath.mpf(coeff.numerator) / coeff.denominator
                        for i in monom:
                            term *= xs[i]
                        total += term
                    worst = max(worst, float(abs(total)))
        return worst


class _NotPolynomial(Exception):
    pass


class _Sparse:
    """Expressions as expanded polynomials: {monomial: coefficient}, a monomial being the sorted
    tuple of its generators' indices (with repetition), a coefficient an int or a Fraction.

    Shared subexpressions are converted once (memo). ``resolve(symbol)`` gives the expression a
    symbol stands for, or None for a generator. Sparse monomials keep products cheap when there
    are hundreds of generators but each monomial has only a few.
    """

    def __init__(self, resolve):
        self.resolve, self.memo, self.index, self.symbols = resolve, {}, {}, []

    def __call__(self, e) -> dict:
        hit = self.memo.get(e)
        if hit is not None:
            return hit
        if e.is_Symbol:
            r = self.resolve(e)
            out = self._gen(e) if r is None else self(r)
        elif e.is_Integer:
            out = {(): int(e)} if e != 0 else {}
        elif e.is_Rational:
            out = {(): Fraction(int(e.p), int(e.q))}
        elif e.is_Add:
            out = {}
            for a in e.args:
                out = _padd(out, self(a))
        elif e.is_Mul:
            out = {(): 1}
            for a in e.args:
                out = _pmul(out, self(a))
        elif e.is_Pow and e.exp.is_Integer and e.exp >= 0:
            base, out = self(e.base), {(): 1}
            for _ in range(int(e.exp)):
                out = _pmul(out, base)
        else:
            raise _NotPolynomial(e)
        self.memo[e] = out
        return out

    def _gen(self, s):
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.symbols)
            self.symbols.append(s)
        return {(i,): 1}


def _padd(a: dict, b: dict) -> dict:
    if len(a) < len(b):
        a, b = b, a
    out = dict(a)
    for m, c in b.items():
        v = out.get(m, 0) + c
        if v:
            out[m] = v
        else:
            out.pop(m, None)
    return out


def _pmul(a: dict, b: dict) -> dict:
    if not a or not b:
        return {}
    if len(a) < len(b):
        a, b = b, a
    out = {}
    get = out.get
    for m2, c2 in b.items():
        for m1, c1 in a.items():
            m = tuple(sorted(m1 + m2)) if m2 else m1
            out[m] = get(m, 0) + c1 * c2
    return {m: c for m, c in out.items() if c}


# ----- the proof of a whole cell -----------------------------------------------------------------
def prove(cell, hidden_sizes=(2, 3), input_size: int = 2, truncation=None,
          progress=None) -> list:
    """Prove every formula of ``derive(cell, truncation=truncation)`` at small sizes.

    Arguments:
        cell: a ``Cell`` or a registered name.
        hidden_sizes: hidden sizes of the instances (raised to multiples of a block size).
        input_size: the input size I of every instance.
        truncation: ``None`` (exact gradient) or ``"1997"``.
        progress: optional ``progress(done, total, verdict)`` called after each formula.

    Returns:
        one ``Verdict`` per formula (method "exact" or "numeric-fallback"; detail names the
        sizes, or the largest difference of a formula that fails).

    >>> [v.ok for v in prove("lstm", hidden_sizes=(2,))][:2]
    [True, True]
    """
    cell = get_cell(cell)
    d = derive(cell, truncation=truncation)
    return prove_derivation(d, hidden_sizes, input_size, progress)


def prove_derivation(d, hidden_sizes=(2, 3), input_size: int = 2, progress=None,
                     items=None) -> list:
    """Prove the formulas ``items`` (default: all of ``formulas(d)``) of a derivation ``d``."""
    items = formulas(d) if items is None else items
    all_sizes = instance_sizes(d.cell, hidden_sizes, input_size)
    start = time.perf_counter()
    instances = [Instance(d.cell, s, d.outputs, d.truncation) for s in all_sizes]
    setup = (time.perf_counter() - start) / max(len(items), 1)
    sizes_text = "H=" + ",".join(str(s["H"]) for s in all_sizes) + f" I={input_size}"
    verdicts = []
    for n, (label, kind, key, expr) in enumerate(items):
        t0 = time.perf_counter()
        ok, method, detail = True, "exact", sizes_text
        for inst in instances:
            good, how, worst = inst.compare(inst.claimed(expr), inst.truth(kind, key))
            if not good:
                ok, method = False, how
                detail = (f"H={inst.sizes['H']}: " + ("shapes differ" if worst is None else
                          f"max |difference| = {worst:.3g}"))
                break
            if how != "exact":
                method = how
        verdicts.append(Verdict(label, ok, method, time.perf_counter() - t0 + setup, detail))
        if progress is not None:
            progress(n + 1, len(items), verdicts[-1])
    return verdicts


__all__ = ["prove", "prove_derivation", "formulas", "instance_sizes", "Instance", "Atoms"]
