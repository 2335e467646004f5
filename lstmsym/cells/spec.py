"""Cells as data: ordered vector-level equations over inputs, carried states and parameters.

A ``Cell`` is validated when built: every symbol an equation uses is an input, a previous
state, a parameter or the target of an earlier equation; every state is updated exactly once;
shapes match. Errors are ``CellError`` naming the equation, never a SymPy traceback.

``CellBuilder`` is the API to write a cell in a few lines (README, "Your own cell"):

>>> from lstmsym.cells.spec import CellBuilder
>>> from lstmsym.ops import sigmoid, tanh
>>> b = CellBuilder("mgu", source="Zhou et al. 2016, minimal gated unit")
>>> x, h = b.input("x"), b.state("h")
>>> f = b.let("f", sigmoid(b.param("W_f", ("H", "I")) @ x + b.param("U_f", ("H", "H")) @ h
...                        + b.param("b_f", ("H",))))
>>> n = b.let("n", tanh(b.param("W_n", ("H", "I")) @ x + b.param("U_n", ("H", "H")) @ (f * h)
...                     + b.param("b_n", ("H",))))
>>> _ = b.let("h", (1 - f) * h + f * n)
>>> cell = b.build()
>>> [e.target.name for e in cell.equations]
['f_bar', 'f', 'n_bar', 'n', 'h']
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lstmsym.errors import CellError, ShapeError
from lstmsym.expr import Act, Expr, Sym, MatVec


@dataclass(frozen=True)
class Equation:
    """``target = expr`` at step t. ``preact_of`` names the gate whose pre-activation this is."""

    target: Sym
    expr: Expr
    preact_of: str | None = None
    label: str | None = None

    def __repr__(self):
        return f"{self.target!r} = {self.expr!r}"


@dataclass(frozen=True)
class Cell:
    """A recurrent cell: one step of its forward pass as ordered equations.

    Attributes:
        name: registry name, e.g. ``"peephole-lstm"``.
        inputs: input symbols at t (shape ``("I",)``).
        states: carried states, as their values at t (``h`` first, then ``C`` if any).
        params: parameter symbols in declaration order.
        equations: ordered assignments; pre-activations are split into their own equations.
        outputs: states whose value at every t is an output of the network (get a direct
            gradient ``OutGrad`` in the derivation).
        source: citation (paper, section, equation).
        init: name -> initial value spec for ``init_params`` (a number for a constant bias).
        dims: extra dimension names and how they relate to H, e.g. ``{"G": ("H", 2)}`` meaning
            G = H / 2 (memory-cell blocks).
    """

    name: str
    inputs: tuple
    states: tuple
    params: tuple
    equations: tuple
    outputs: tuple = ("h",)
    source: str = ""
    description: str = ""
    init: dict = field(default_factory=dict, compare=False, hash=False)
    dims: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        validate(self)

    # --- lookups ------------------------------------------------------------------------------
    def equation(self, name: str) -> Equation:
        for e in self.equations:
            if e.target.name == name:
                return e
        raise KeyError(name)

    def param(self, name: str) -> Sym:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def state(self, name: str) -> Sym:
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def state_names(self) -> tuple:
        return tuple(s.name for s in self.states)

    @property
    def variables(self) -> tuple:
        """Every equation target at t, in forward order."""
        return tuple(e.target for e in self.equations)

    def replace(self, **changes) -> "Cell":
        """A new cell with some fields changed (validated again)."""
        from dataclasses import replace
        return replace(self, **changes)


def validate(cell: Cell) -> None:
    """Raise ``CellError`` naming the equation if the cell is malformed."""
    known = {}
    for s in cell.inputs:
        _declare(known, s.at(0), "input", cell)
    for s in cell.states:
        _declare(known, s.at(-1), "state", cell)
    for p in cell.params:
        _declare(known, p, "parameter", cell)
    _check_dims(cell)
    targets = {e.target.name: i for i, e in enumerate(cell.equations)}
    defined_state = set()
    for i, eq in enumerate(cell.equations):
        where = f"cell {cell.name!r}, equation {i + 1} ({eq.target.name} = …)"
        for s in sorted(eq.expr.syms(), key=lambda s: (s.name, s.time)):
            if s in known:
                continue
            if s.time == 0 and s.name in targets:
                j = targets[s.name]
                what = "itself" if j == i else f"equation {j + 1}, which comes later"
                raise CellError(f"{where}: uses {s.name}_t before it is defined ({what}); "
                                "equations must not depend on themselves or on later ones")
            if s.time == -1 and s.role != "state":
                raise CellError(f"{where}: {s.name}_(t-1) is not a carried state; only states "
                                f"({', '.join(cell.state_names) or 'none'}) have previous values")
            raise CellError(f"{where}: undefined symbol {s.name!r} (time {s.time:+d}); known: "
                            + ", ".join(sorted({k.name for k in known})))
        if eq.target.name in (p.name for p in cell.params) or eq.target.name in (
                x.name for x in cell.inputs):
            raise CellError(f"{where}: assigns to {eq.target.name!r}, an input or parameter")
        if eq.target.at(0) in known:
            raise CellError(f"{where}: {eq.target.name!r} is assigned twice")
        try:
            shape = eq.expr.shape
        except ShapeError as exc:  # pragma: no cover - constructors check first
            raise CellError(f"{where}: {exc}") from None
        if shape != eq.target.shape:
            raise ShapeError(f"{where}: the right-hand side has shape {shape}, "
                             f"the target {eq.target.name!r} has shape {eq.target.shape}")
        known[eq.target.at(0)] = "var"
        if eq.target.name in cell.state_names:
            declared = cell.state(eq.target.name)
            if eq.target.shape != declared.shape:
                raise ShapeError(f"{where}: state {eq.target.name!r} is declared with shape "
                                 f"{declared.shape}, its update has shape {eq.target.shape}")
            defined_state.add(eq.target.name)
    missing = [s for s in cell.state_names if s not in defined_state]
    if missing:
        raise CellError(f"cell {cell.name!r}: state {missing[0]!r} has no update equation "
                        f"(add an equation whose target is {missing[0]!r})")
    for o in cell.outputs:
        if o not in cell.state_names:
            raise CellError(f"cell {cell.name!r}: output {o!r} is not a state")
    used = {s.name for eq in cell.equations for s in eq.expr.syms() if s.role == "param"}
    unused = [p.name for p in cell.params if p.name not in used]
    if unused:
        raise CellError(f"cell {cell.name!r}: parameter {unused[0]!r} is declared but no "
                        "equation uses it")


def _check_dims(cell: Cell) -> None:
    """Every dimension name is the input's, a state's, or declared in ``cell.dims``."""
    base = {d for s in (*cell.inputs, *cell.states) for d in s.shape}
    for name, spec in cell.dims.items():
        if (not isinstance(spec, tuple) or len(spec) != 2 or spec[0] not in base
                or not isinstance(spec[1], int) or spec[1] < 1):
            raise CellError(f"cell {cell.name!r}: dimension {name!r} must be (one of "
                            f"{sorted(base)}, positive integer factor), got {spec!r}")
    known = base | set(cell.dims)
    for p in cell.params:
        for d in p.shape:
            if d not in known:
                raise CellError(f"cell {cell.name!r}: parameter {p.name!r} has shape {p.shape} "
                                f"with unknown dimension {d!r}; known: {', '.join(sorted(known))}")


def _declare(known, sym, kind, cell):
    if sym in known:
        raise CellError(f"cell {cell.name!r}: {kind} {sym.name!r} is declared twice")
    known[sym] = kind


class CellBuilder:
    """Write a cell equation by equation; ``build()`` validates it.

    - ``input(name)``: the input x_t (size "I").
    - ``state(name, latex=None)``: declares a carried state (size "H") and returns its previous
      value (name at t-1); the first state is the cell's output unless ``build(outputs=...)``.
    - ``param(name, shape, latex=None, init=None)``: a parameter; shape from "I", "H" and
      dimensions made with ``dim``; ``init`` a constant for ``init_params`` (e.g. a bias).
    - ``dim(name, base="H", factor)``: a dimension of size base/factor (gates of blocks).
    - ``let(name, expr, label=None, latex=None, pre=None, pre_latex=None)``: appends
      ``name = expr`` and returns name at t; assigning a state's name is its update.

    A ``let`` whose right-hand side is an activation of a non-trivial argument is split into
    ``name_bar = argument`` (or ``pre``) and ``name = f(name_bar)``, so every gate has a named
    pre-activation (its delta is the gradient of that; the 1997 truncation cuts there).
    Expressions: ``W @ v`` (affine map), ``a * b`` (Hadamard), ``+``, ``-``, ``1 - a``, numbers
    times vectors, activations from lstmsym.ops (``sigmoid(...)``, ``scalar_activation``).
    Mistakes raise ``CellError``/``ShapeError`` naming the equation (or the operands, for a
    shape clash inside an expression, which is found while Python builds it).
    """

    def __init__(self, name: str, source: str = "", description: str = "",
                 input_dim: str = "I", hidden_dim: str = "H"):
        self.name, self.source, self.description = name, source, description
        self.input_dim, self.hidden_dim = input_dim, hidden_dim
        self.inputs, self.states, self.params, self.equations = [], [], [], []
        self.outputs = None
        self.init, self.dims = {}, {}
        self._latex = {}

    def input(self, name: str = "x", dim: str | None = None, latex: str | None = None) -> Sym:
        s = Sym(name, "input", (dim or self.input_dim,), 0, latex)
        self.inputs.append(s)
        return s

    def state(self, name: str, dim: str | None = None, latex: str | None = None) -> Sym:
        s = Sym(name, "state", (dim or self.hidden_dim,), 0, latex)
        self.states.append(s)
        self._latex[name] = latex
        return s.prev

    def param(self, name: str, shape: tuple, latex: str | None = None, init=None) -> Sym:
        p = Sym(name, "param", tuple(shape), 0, latex)
        self.params.append(p)
        if init is not None:
            self.init[name] = init
        return p

    def let(self, name: str, expr: Expr, label: str | None = None,
            latex: str | None = None, pre: str | None = None,
            pre_latex: str | None = None) -> Sym:
        """Append ``name = expr``; returns ``name`` at t.

        ``pre``/``pre_latex`` name the split-off pre-activation (default ``<name>_bar``,
        LaTeX ``\\bar{...}``), e.g. ``pre="net_in"`` for the 1997 paper's net inputs.
        """
        if not isinstance(expr, Expr):
            raise CellError(f"cell {self.name!r}, equation for {name!r}: right-hand side is "
                            f"{type(expr).__name__}, not a vector expression")
        is_state = name in (s.name for s in self.states)
        role = "state" if is_state else "var"
        latex = latex or self._latex.get(name)
        split = isinstance(expr, Act) and not isinstance(expr.arg, Sym)
        pre_name = pre or f"{name}_bar"
        for new in ([pre_name, name] if split else [name]):
            self._check_new_target(new, name)
        if split:
            if pre_latex is None and latex is not None:
                pre_latex = r"\bar{%s}" % latex
            pre_sym = Sym(pre_name, "var", expr.arg.shape, 0, pre_latex)
            self.equations.append(Equation(pre_sym, expr.arg, preact_of=name,
                                           label=f"pre-activation of {name}"))
            expr = Act(expr.fn, pre_sym)
        target = Sym(name, role, expr.shape, 0, latex)
        self.equations.append(Equation(target, expr, label=label))
        return target

    def dim(self, name: str, base: str | None = None, factor: int = 1) -> str:
        """Declare a dimension ``name`` of size ``base / factor`` (e.g. G = H / S for blocks)."""
        base = base or self.hidden_dim
        if not isinstance(factor, int) or factor < 1:
            raise CellError(f"cell {self.name!r}: dimension {name!r} needs a positive integer "
                            f"factor, got {factor!r}")
        self.dims[name] = (base, factor)
        return name

    def _check_new_target(self, new: str, name: str) -> None:
        for i, eq in enumerate(self.equations):
            if eq.target.name == new:
                raise CellError(f"cell {self.name!r}, equation {len(self.equations) + 1} "
                                f"({name} = …): {new!r} is assigned twice (first in equation "
                                f"{i + 1}, {eq.target.name} = …)")

    def build(self, outputs: tuple | None = None) -> Cell:
        if not self.states:
            raise CellError(f"cell {self.name!r} declares no state; a recurrent cell needs at "
                            "least one (b.state('h'))")
        outs = outputs or self.outputs or (self.states[0].name,)
        return Cell(self.name, tuple(self.inputs), tuple(self.states), tuple(self.params),
                    tuple(self.equations), tuple(outs), self.source, self.description,
                    dict(self.init), dict(self.dims))


def affine(*pairs, bias: Sym | None = None) -> Expr:
    """Sum of matrix-vector products plus an optional bias: affine((W, x), (U, h), bias=b)."""
    out = None
    for m, v in pairs:
        term = MatVec(m, v)
        out = term if out is None else out + term
    if bias is not None:
        out = bias if out is None else out + bias
    return out
