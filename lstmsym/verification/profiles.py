"""Notation profiles: how to read the names and placeholders of a hand-written formula.

A profile states, for one notation,
- the vector convention (``row``: gradients are row vectors and ``∇ ∘ a W`` means
  ``Wᵀ(∇ ∘ a)``; ``column``: ``Wᵀ(∇ ∘ a)`` is written as such);
- how names map to the cell's (``W_Cf`` → ``w_Cf`` when the cell's peephole is diagonal);
- what ``\\delta^c_t`` names (the gradient of C_t; ``\\delta^f_t`` the gradient of f's
  pre-activation);
- the output of the network (``z`` in ``\\nabla_{z_t}Div \\nabla_{h_t} z_t``, the part of
  ∇_{h_t}Div arriving from the output at t);
- how a placeholder such as ``\\sigma'(.)`` is read: next to a weight of gate g whose activation
  is σ it is σ' at g's pre-activation (the lecture's ``\\sigma'(.) W_{Cf}``); any other
  placeholder is read at the point of the cell where that function is applied that makes its
  term closest to a derived term, and the reading is reported.
- which gradient ∇ means: the total derivative (all paths through t+1), as in the lecture.

Profiles: ``default`` (the cell's own names, column vectors, as lstmsym's LaTeX printer writes)
and ``lecture`` (CMU 11-785 LSTM slides, seed 001; REFERENCES.md Sec. 6).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lstmsym.errors import LstmsymError

# \delta^x_t: x names a state (c, h) or a gate whose pre-activation delta is meant
DELTA_TARGETS = {"c": "C", "C": "C", "h": "h", "s": "C"}


@dataclass(frozen=True)
class Profile:
    """One notation for hand-written backward formulas."""

    name: str
    description: str
    convention: str = "column"
    names: dict = field(default_factory=dict)
    outputs: tuple = ("z", "y")

    def output_of(self, name: str):
        """The state whose output gradient ∇_{name}Div ∇_h name denotes (None if not an output)."""
        return "h" if name in self.outputs else None

    def alias(self, name: str, symbols: dict) -> str:
        """The cell's name for ``name``: W_Cf and w_Cf are the same peephole in either case."""
        if name in symbols:
            return name
        for cand in (name[:1].swapcase() + name[1:], name.replace(",", "")):
            if cand in symbols:
                return cand
        return name

    def delta_target(self, label: str, cell) -> str:
        """The quantity \\delta^{label} is the gradient of."""
        if label in DELTA_TARGETS:
            return DELTA_TARGETS[label]
        gate = {"g": "C_tilde", "\\tilde{c}": "C_tilde", "\\tilde{C}": "C_tilde"}.get(label, label)
        names = {e.target.name for e in cell.equations}
        if f"{gate}_bar" in names:
            return f"{gate}_bar"
        if gate in names:
            return gate
        raise LstmsymError(f"\\delta^{{{label}}}: cell {cell.name!r} has no quantity {label!r}; "
                           f"gates: {', '.join(sorted(n for n in names if not n.endswith('_bar')))}")


DEFAULT = Profile(
    "default",
    "the cell's own names (lstmsym list -v), column vectors: W^T(∇ ∘ a); ∇ is the total "
    "gradient; \\partial_{h_t}Div the part from the output at t",
    convention="column")

LECTURE = Profile(
    "lecture",
    "CMU 11-785 LSTM lecture (seed 001): row-vector gradients (∇ ∘ a W means W^T(∇ ∘ a)), "
    "W_Cf/W_Ci/W_Co the peepholes, \\sigma'(.) next to W_Cf is σ' at the forget gate's "
    "pre-activation, \\nabla_{z_t}Div \\nabla_{h_t} z_t the gradient from the output, "
    "∇_{C_t}Div the total derivative (paths through t+1 included)",
    convention="row",
    names={"Ctilde": "C_tilde", "c": "C"})

PROFILES = {p.name: p for p in (DEFAULT, LECTURE)}


def get_profile(name) -> Profile:
    """The profile called ``name`` (a ``Profile`` is returned as it is; None: default)."""
    if name is None:
        return DEFAULT
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise LstmsymError(f"unknown notation profile {name!r}; profiles: "
                           + ", ".join(PROFILES)) from None


def parse_maps(items) -> dict:
    """``["W_Cf=w_Cf", "p_f=w_Cf"]`` -> dict; a clear error for a malformed item."""
    out = {}
    if isinstance(items, dict):
        return {_plain(a): b for a, b in items.items()}
    for item in items or ():
        if item.count("=") != 1 or not all(s.strip() for s in item.split("=")):
            raise LstmsymError(f"--map {item!r}: write yours=cell's, e.g. --map p_f=w_Cf")
        a, b = (s.strip() for s in item.split("="))
        out[_plain(a)] = b
    return out


def _plain(name: str) -> str:
    """W_{cf} -> W_cf, \\tilde{C} -> C_tilde: the reader's spelling of a written name."""
    s = name.replace("{", "").replace("}", "").replace(" ", "")
    for acc in ("tilde", "bar", "hat"):
        if s.startswith("\\" + acc):
            s = s[len(acc) + 1:] + "_" + acc
    return s


__all__ = ["Profile", "DEFAULT", "LECTURE", "PROFILES", "get_profile", "parse_maps"]
