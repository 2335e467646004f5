"""derivations/ is current and compiles; the documents say what the lecture says.

- The committed .tex and .md files equal what ``lstmsym derive --all -o DIR`` writes now.
- Every committed .tex compiles with pdflatex (skipped only where pdflatex is not installed).
- The peephole-LSTM document has the lecture's structure: its nabla_{C_t} Div row consists of
  exactly the terms of the lecture's formula (seed 001), built here by hand from expression
  nodes, not taken from the derivation.
- Nothing is unrolled: the derivation has no sizes, so its cost cannot grow with them.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lstmsym.cells import cell_names, get_cell
from lstmsym.cli import main
from lstmsym.derive import derive
from lstmsym.expr import ActDeriv, Act, Grad, Had, MatVec, OutGrad, Sym
from lstmsym.ops import sigmoid, tanh
from lstmsym.printing.document import cell_document, to_latex, to_markdown
from lstmsym.printing.latex import latex

ROOT = Path(__file__).resolve().parent.parent
DERIVATIONS = ROOT / "derivations"
PDFLATEX = shutil.which("pdflatex")
needs_pdflatex = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("derivations")
    assert main(["derive", "--all", "--no-pdf", "-o", str(out)]) == 0
    return out


def test_committed_derivations_are_current(regenerated):
    fresh = sorted(p.name for p in regenerated.iterdir())
    committed = sorted(p.name for p in DERIVATIONS.glob("*") if p.suffix in (".tex", ".md"))
    assert committed == fresh, ("derivations/ lists other cells than are registered; run "
                                "`lstmsym derive --all -o derivations/`")
    stale = [n for n in fresh if (DERIVATIONS / n).read_bytes() != (regenerated / n).read_bytes()]
    assert not stale, f"stale files in derivations/ ({', '.join(stale)}): run " \
                      "`lstmsym derive --all -o derivations/`"
    assert (DERIVATIONS / "lstmsym-derivations.pdf").is_file()


def _pdflatex(tex: Path, workdir: Path):
    shutil.copy(tex, workdir / tex.name)
    proc = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error",
                           "-no-shell-escape", tex.name], cwd=workdir, capture_output=True,
                          timeout=120)
    log = (workdir / tex.with_suffix(".log").name).read_text(errors="replace")
    assert proc.returncode == 0, f"{tex.name} does not compile:\n" + "\n".join(
        line for line in log.splitlines() if line.startswith("!"))
    assert (workdir / tex.with_suffix(".pdf").name).stat().st_size > 1000


@needs_pdflatex
@pytest.mark.parametrize("name", cell_names())
def test_committed_tex_compiles(name, tmp_path):
    _pdflatex(DERIVATIONS / f"{name}.tex", tmp_path)


@needs_pdflatex
def test_collection_pdf_is_reproducible(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert main(["derive", "--all", "-o", str(d)]) == 0
    pdf = "lstmsym-derivations.pdf"
    assert (a / pdf).read_bytes()[:5] == b"%PDF-"
    assert (a / pdf).read_bytes() == (b / pdf).read_bytes()


# --- the lecture's structure, from independently built expressions ---------------------------
H = ("H",)


def _v(name, role="var", t=0):
    return Sym(name, role, H, t)


def _row_terms(text: str, lhs: str) -> list:
    """The top-level summands of the row ``lhs &= …`` (continuation lines joined)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(lhs + " &= "))
    body = lines[start][len(lhs) + 4:]
    for line in lines[start + 1:]:
        if not line.startswith(r"&\quad "):
            break
        body = body.rstrip(" \\") + " " + line[len(r"&\quad "):]
    body = body.rstrip(" \\")
    terms, depth, cur = [], 0, ""
    for tok in re.split(r"(\\left\(|\\right\)| \+ )", body):
        if tok == r"\left(":
            depth += 1
        elif tok == r"\right)":
            depth -= 1
        if tok == " + " and depth == 0:
            terms.append(cur.strip())
            cur = ""
        else:
            cur += tok
    terms.append(cur.strip())
    return terms


def test_peephole_lstm_state_gradients_match_the_lecture():
    """Seed 001: nabla_{C_t} Div = nabla_{h_t} Div o (o_t o tanh'(.) + tanh(.) o sigma'(.) W_Co)
    + nabla_{C_{t+1}} Div o (f_{t+1} + C_t o sigma'(.) W_Cf + C~_{t+1} o sigma'(.) W_Ci), and
    nabla_{h_t} Div has the output term plus the recurrent terms through W_hf, W_hi, W_hC, W_ho
    at t+1. (With diagonal peepholes W_C* are the vectors w_C*.)"""
    C, Cn, h, hn = _v("C", "state"), _v("C", "state", 1), _v("h", "state"), _v("h", "state", 1)
    dC, dCn, dh, dhn = Grad(C), Grad(Cn), Grad(h), Grad(hn)
    o, f_n, i_n, Ct_n = _v("o"), _v("f", t=1), _v("i", t=1), _v("C_tilde", t=1)
    o_bar, f_bar_n, i_bar_n = _v("o_bar"), _v("f_bar", t=1), _v("i_bar", t=1)
    Ct_bar_n, o_bar_n = _v("C_tilde_bar", t=1), _v("o_bar", t=1)
    w = {k: Sym(f"w_C{k}", "param", H) for k in "fio"}
    W = {k: Sym(f"W_h{k}", "param", ("H", "H")) for k in "fioC"}

    lecture_C = [
        Had((dh, o, ActDeriv(tanh, C))),
        Had((dh, Act(tanh, C), ActDeriv(sigmoid, o_bar), w["o"])),
        Had((dCn, f_n)),                                           # the f_{t+1} carry
        Had((dCn, Ct_n, ActDeriv(sigmoid, i_bar_n), w["i"])),      # peephole into i_{t+1}
        Had((dCn, C, ActDeriv(sigmoid, f_bar_n), w["f"])),         # peephole into f_{t+1}
    ]
    lecture_h = [
        OutGrad(h),
        MatVec(W["o"], Had((dhn, Act(tanh, Cn), ActDeriv(sigmoid, o_bar_n))), transpose=True),
        MatVec(W["C"], Had((dCn, i_n, ActDeriv(tanh, Ct_bar_n))), transpose=True),
        MatVec(W["i"], Had((dCn, Ct_n, ActDeriv(sigmoid, i_bar_n))), transpose=True),
        MatVec(W["f"], Had((dCn, C, ActDeriv(sigmoid, f_bar_n))), transpose=True),
    ]
    doc = to_markdown(cell_document("peephole-lstm", parts=("step",)))
    lecture_form = doc[doc.index("State gradients (lecture form)"):doc.index("Gate deltas")]
    assert sorted(_row_terms(lecture_form, latex(dC))) == sorted(map(latex, lecture_C))
    assert sorted(_row_terms(lecture_form, latex(dh))) == sorted(map(latex, lecture_h))
    # and the lecture's reading order inside each term: the gradient first, then the factors
    assert r"\nabla_{h_{t}}\mathrm{Div} \circ o_{t} \circ \tanh'(C_{t})" in lecture_form
    assert r"\nabla_{C_{t+1}}\mathrm{Div} \circ f_{t+1}" in lecture_form


def test_forward_pass_inlines_pre_activations_and_defines_them():
    doc = to_latex(cell_document("peephole-lstm", parts=("forward",)))
    assert (r"f_{t} &= \sigma\bigl(w_{Cf} \circ C_{t-1} + W_{hf} h_{t-1} + W_{xf} x_{t} "
            r"+ b_{f}\bigr)") in doc
    assert r"\bar{f}_{t} &= w_{Cf} \circ C_{t-1} + W_{hf} h_{t-1}" in doc
    assert r"o_{t} &= \sigma\bigl(w_{Co} \circ C_{t} + W_{ho} h_{t-1}" in doc  # o peeks at C_t


def test_1997_section_boxes_exactly_the_dropped_terms():
    """Boxed terms = exact carry terms minus truncated carry terms, computed here from the two
    derivations; for the 1997 LSTM nothing at all flows back through y^c(t-1)."""
    for name in ("peephole-lstm", "lstm1997"):
        cell = get_cell(name)
        exact, tr = derive(cell), derive(cell, truncation="1997")
        text = to_latex(cell_document(cell, parts=("1997",)))
        for s in cell.states:
            kept = {t.expr for t in tr.carry[s.name]}
            for t in exact.carry[s.name]:
                boxed = r"\boxed{%s}" % latex(t.expr)
                assert (boxed in text) == (t.expr not in kept)
    tr = derive(get_cell("lstm1997"), truncation="1997")
    assert tr.carry["h"] == []


def test_every_cell_document_has_every_section():
    for name in cell_names():
        md = to_markdown(cell_document(name))
        for title in ("Notation", "Forward pass", "Backward pass, one step", "Full BPTT",
                      "Truncated BPTT", "The 1997 truncation"):
            assert f"## {title}" in md, (name, title)
        assert get_cell(name).source in md.replace("\\", "")


def test_nothing_is_unrolled():
    """The derivation has no sizes: every shape in every derived expression is a dimension
    name, the derived equations are the same object for every H, I and T (there is no size to
    pass), and its size is a small multiple of the number of forward equations."""
    for name in cell_names():
        cell = get_cell(name)
        d = derive(cell)
        nodes = 0
        for ts in list(d.grads.values()) + list(d.params.values()) + list(d.carry.values()):
            for t in ts:
                for n in t.expr.walk():
                    nodes += 1
                    assert all(isinstance(dim, str) for dim in n.shape), (name, n)
        assert nodes < 60 * len(cell.equations), name


def test_a_users_cell_gets_a_document_that_compiles(tmp_path):
    """Not registered (that would change derivations/): a minimal gated unit with a user
    activation, an identity path and a carried second state, printed and compiled."""
    import sympy

    from lstmsym.cells.spec import CellBuilder
    from lstmsym.ops import identity, scalar_activation, sigmoid
    softsign = scalar_activation("softsign", lambda z: z / (1 + sympy.Abs(z)))
    b = CellBuilder("my-mgu", source="Zhou et al. 2016, minimal gated unit",
                    description="test cell")
    x, h, m = b.input("x"), b.state("h"), b.state("m")
    f = b.let("f", sigmoid(b.param("W_f", ("H", "I")) @ x + b.param("U_f", ("H", "H")) @ h))
    n = b.let("n", softsign(b.param("W_n", ("H", "I")) @ x + b.param("U_n", ("H", "H")) @ (f * h)))
    b.let("m", identity(m + n))
    b.let("h", (1 - f) * h + f * n)
    cell = b.build()
    doc = cell_document(cell)
    md, tex = to_markdown(doc), to_latex(doc, standalone=True)
    assert r"n_{t} &= \operatorname{softsign}\bigl(" in md
    assert r"\operatorname{softsign}'(\bar{n}_{t})" in md
    assert r"h_{t} &= \left(\mathbf{1} - f_{t}\right) \circ h_{t-1} + f_{t} \circ n_{t}" in md
    assert "Zhou et al. 2016" in md
    if PDFLATEX is not None:  # the same condition as needs_pdflatex
        src = tmp_path / "src"
        src.mkdir()
        (src / "my-mgu.tex").write_text(tex)
        _pdflatex(src / "my-mgu.tex", tmp_path)
