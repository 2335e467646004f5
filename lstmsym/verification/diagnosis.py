"""Name what is wrong: match claimed terms to derived terms and describe each difference.

Input: both sides as {sorted factors: coefficient} (terms.py). Identical terms cancel; the rest
are paired greedily by how many factors they share. A pair differing in a factor or two is a
"wrong factor" (with a label: missing transpose, wrong weight matrix, wrong gate, time-index
slip, derivative at the wrong point, σ' where tanh' belongs), an extra or missing factor, or a
sign error; an unpaired derived term is missing (a carry term, a peephole term …), an unpaired
claimed term is extra.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from lstmsym.expr import Act, ActDeriv, Grad, OutGrad, Sym, scale
from lstmsym.parsing.interpret import Hole
from lstmsym.verification.terms import term_expr, tokens


@dataclass
class Issue:
    """One difference between the claimed and the derived formula."""

    kind: str                   # "missing term", "extra term", "wrong factor", "sign error", …
    claimed: object = None      # the claimed term (an lstmsym expression) or None
    derived: object = None      # the derived term it should be, or None
    details: list = field(default_factory=list)   # [(label, LaTeX text)]
    keys: tuple = field(default=({}, {}), repr=False, compare=False)  # expanded terms covered

    def latex_lines(self, latex) -> list:
        out = []
        head = self.kind
        if self.claimed is not None and self.derived is not None:
            out.append(f"{head}: the term ${latex(self.claimed)}$ should be "
                       f"${latex(self.derived)}$")
        elif self.derived is not None:
            out.append(f"{head}: ${latex(self.derived)}$")
        else:
            out.append(f"{head}: ${latex(self.claimed)}$")
        for label, text in self.details:
            out.append(f"  - {label}: {text}")
        return out


def _is_hole(t) -> bool:
    return isinstance(t, Hole)


def distance(tc: Counter, cc, td: Counter, dc) -> int:
    """How many factors (and signs) separate two terms; placeholders match anything."""
    holes = sum(n for t, n in tc.items() if _is_hole(t))
    tc = Counter({t: n for t, n in tc.items() if not _is_hole(t)})
    extra = sum((tc - td).values())
    missing = sum((td - tc).values())
    return extra + max(0, missing - holes) + (0 if cc == dc else 1)


def _kind(t) -> str:
    if isinstance(t, tuple):
        return t[0]
    if isinstance(t, (Grad, OutGrad)):
        return "grad"
    if isinstance(t, ActDeriv):
        return "dact"
    if isinstance(t, Act):
        return "act"
    if isinstance(t, Sym) and t.role == "param":
        return "param"
    return "sym"


def token_latex(t, latex, row=False) -> str:
    if isinstance(t, tuple) and t[0] == "mat":
        # column: W^T v is written with the transpose; row: (v) W is written without it
        return latex(t[1]) + (r"^{\top}" if t[2] != row else "")
    if isinstance(t, tuple) and t[0] == "repeat":
        return r"\cdot \otimes \mathbf{1}_{%d}" % t[1]
    if isinstance(t, tuple) and t[0] == "blocksum":
        return r"\left(I \otimes \mathbf{1}_{%d}%s\right)" % (t[1], "" if row else r"^{\top}")
    if isinstance(t, tuple):
        return "(outer product)"
    return latex(t)


def _label(x, y, row=False) -> str:
    kx, ky = _kind(x), _kind(y)
    if kx == ky == "mat":
        if x[1] == y[1]:
            missing = (y[2] and not x[2]) != row
            return "missing transpose" if missing else "transpose where none belongs"
        return "wrong weight matrix"
    if kx == ky == "param":
        return "wrong weight"
    if kx == ky == "dact":
        if x.fn.name != y.fn.name:
            return f"{_short(x.fn)}' where {_short(y.fn)}' belongs"
        if isinstance(x.arg, Sym) and isinstance(y.arg, Sym) and x.arg.name == y.arg.name:
            return "time-index slip (derivative at the wrong step)"
        return "derivative at the wrong point"
    if kx == ky and kx in ("sym", "grad", "act"):
        a = x.of if kx == "grad" else (x.arg if kx == "act" else x)
        b = y.of if kx == "grad" else (y.arg if kx == "act" else y)
        if isinstance(a, Sym) and isinstance(b, Sym) and a.name == b.name and a.time != b.time:
            return "time-index slip"
        if kx == "sym" and x.role == y.role == "var":
            gates = not x.name.endswith("_bar") and not y.name.endswith("_bar")
            return "wrong gate" if gates else "wrong quantity"
        return "wrong gradient" if kx == "grad" else "wrong factor"
    return "wrong factor"


def _short(fn) -> str:
    return {"sigmoid": "σ"}.get(fn.name, fn.name)


def _pair_factors(extra: list, missing: list) -> tuple:
    pairs = []
    extra, missing = list(extra), list(missing)
    for same_kind in (True, False):
        for x in list(extra):
            for y in missing:
                if not same_kind or _kind(x) == _kind(y):
                    pairs.append((x, y))
                    extra.remove(x)
                    missing.remove(y)
                    break
    return pairs, extra, missing


def _odd_one(side: str, t) -> str:
    """An extra or missing block sum is one taken over the wrong factors (the block sum of a
    product is not the product of the block sums)."""
    if isinstance(t, tuple) and t[0] == "blocksum":
        return "block sum over the wrong factors"
    return f"{side} factor"


def describe(tc: Counter, cc, td: Counter, dc, latex, row=False) -> list:
    extra = list((tc - td).elements())
    missing = list((td - tc).elements())
    pairs, extra, missing = _pair_factors(extra, missing)
    out = [(_label(x, y, row), f"${token_latex(x, latex, row)}$ where "
                               f"${token_latex(y, latex, row)}$ belongs") for x, y in pairs]
    out += [(_odd_one("extra", x), f"${token_latex(x, latex, row)}$") for x in extra]
    out += [(_odd_one("missing", y), f"${token_latex(y, latex, row)}$") for y in missing]
    if cc == -dc:
        out.append(("sign error", "the term has the wrong sign"))
    elif cc != dc:
        out.append(("wrong coefficient", f"{cc} where {dc} belongs"))
    if not out:
        out.append(("misplaced factor", "the same factors, grouped differently around a "
                                        "matrix product"))
    return out


def _missing_label(fs, wrt) -> str:
    toks = tokens(fs)
    params = [t for t in toks if isinstance(t, Sym) and t.role == "param"] + \
        [t[1] for t in toks if isinstance(t, tuple) and t[0] == "mat"]
    if any(p.name[:3] in ("w_C", "W_C") for p in params):
        return "missing peephole term"
    grads = [t for t in toks if isinstance(t, Grad)]
    if not params and any(g.of.name == wrt.name and g.of.time == wrt.time + 1 for g in grads):
        return "missing carry term"
    return "missing term"


def diagnose(c_terms: dict, d_terms: dict, wrt, level: str = "as written",
             convention: str = "column", c_groups=(), d_groups=()) -> list:
    """The issues that turn the claimed terms into the derived ones (factors printed in the
    convention the formula was written in). ``c_groups``/``d_groups``: the terms as written,
    each with its expansion, so that a written term missing (or extra, or negated) as a whole
    is named as written rather than as the products it expands into."""
    from lstmsym.verification.result import latex_in
    latex = latex_in(convention)
    row = convention == "row"
    shape = wrt.shape
    C, D = dict(c_terms), dict(d_terms)
    issues = []
    for k in list(C):
        if k in D:
            if C[k] == D[k]:
                del C[k], D[k]
    cand = []
    for kc, cc in C.items():
        tc = tokens(kc)
        for kd, dc in D.items():
            td = tokens(kd)
            common = sum((tc & td).values())
            ex, mi = sum((tc - td).values()), sum((td - tc).values())
            if kc == kd or (common >= 1 and ex <= 2 and mi <= 2 and common >= max(ex, mi)):
                cand.append((distance(tc, cc, td, dc), repr(kc), repr(kd), kc, kd))
    cand.sort(key=lambda c: c[:3])
    used_c, used_d = set(), set()
    for _, _, _, kc, kd in cand:
        if kc in used_c or kd in used_d:
            continue
        used_c.add(kc)
        used_d.add(kd)
        details = describe(tokens(kc), C[kc], tokens(kd), D[kd], latex, row)
        kind = details[0][0] if len(details) == 1 else "wrong term"
        issues.append(Issue(kind, term_expr(kc, C[kc], shape), term_expr(kd, D[kd], shape),
                            details, keys=({kc: C[kc]}, {kd: D[kd]})))
    for kd, dc in D.items():
        if kd not in used_d:
            issues.append(Issue(_missing_label(kd, wrt), None, term_expr(kd, dc, shape),
                                keys=({}, {kd: dc})))
    for kc, cc in C.items():
        if kc not in used_c:
            issues.append(Issue("extra term", term_expr(kc, cc, shape), None,
                                keys=({kc: cc}, {})))
    issues = _regroup(issues, d_groups, "missing", wrt)
    issues = _regroup(issues, c_groups, "extra term", wrt)
    issues = _regroup(issues, d_groups, "sign error", wrt)
    if level != "as written":
        for i in issues:
            i.details.append(("compared", "after writing the gradients at t through those at "
                                          "t+1, as your formula does"))
    return issues


def _regroup(issues, groups, kind, wrt) -> list:
    """Merge the issues of one kind that together cover a written term into one issue."""
    side = 0 if kind == "extra term" else 1
    for expr, expansion in groups:
        if len(expansion) < 2:
            continue
        mine = [i for i in issues if i.kind.startswith(kind) and set(i.keys[side]) <= set(
            expansion)]
        covered = {}
        for i in mine:
            covered.update(i.keys[side])
        if covered != expansion:
            continue
        if kind == "missing":
            merged = Issue(_missing_label(next(iter(expansion)), wrt), None, expr,
                           keys=({}, expansion))
        elif kind == "extra term":
            merged = Issue(kind, expr, None, keys=(expansion, {}))
        else:
            merged = Issue(kind, scale(-1, expr), expr, [("sign error", "the term has the "
                                                                        "wrong sign")],
                           keys=({k: -c for k, c in expansion.items()}, expansion))
        issues = [i for i in issues if i not in mine]
        issues.append(merged)
    return issues


__all__ = ["Issue", "diagnose", "distance", "describe"]
