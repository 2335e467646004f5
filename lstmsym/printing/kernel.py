"""A small code tree for generated kernels, and the printer that turns it into Python text.

A kernel is a tree before it is text (STYLE.md, sec. 4): ``Module`` holds a docstring, imports
and top-level statements; ``Function`` a signature, docstring and body; statements are
``Assign``, ``AugAssign``, ``Expr`` (a call on its own), ``For``, ``If``, ``Comment``, ``Blank``,
``Return``, ``Raise`` and ``Source`` (a helper function copied from real, tested Python code).
Right-hand sides are code strings made by the NumPy expression printer (numpy_printer.py).

``KernelPrinter`` dispatches on the node class (``_print_<Node>``) and indents by nesting depth.

>>> f = Function("double", ["x"], "Twice x.", [Return("2 * x")])
>>> print(KernelPrinter().doprint(f), end="")
def double(x):
    \"\"\"Twice x.\"\"\"
    return 2 * x
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Module:
    docstring: str
    imports: tuple
    body: tuple


@dataclass(frozen=True)
class Function:
    name: str
    args: list
    docstring: str
    body: list


@dataclass(frozen=True)
class Assign:
    target: str
    value: str


@dataclass(frozen=True)
class AugAssign:
    target: str
    op: str
    value: str


@dataclass(frozen=True)
class Expr:
    """A call evaluated for its effect, e.g. ``np.multiply(a, b, out=c)``."""

    value: str


@dataclass(frozen=True)
class For:
    target: str
    iterable: str
    body: list


@dataclass(frozen=True)
class If:
    test: str
    body: list
    orelse: list = field(default_factory=list)


@dataclass(frozen=True)
class Comment:
    text: str


@dataclass(frozen=True)
class Blank:
    pass


@dataclass(frozen=True)
class Return:
    value: str


@dataclass(frozen=True)
class Raise:
    exception: str
    message: str


@dataclass(frozen=True)
class Source:
    """Verbatim source of a helper function (obtained with ``inspect.getsource``)."""

    text: str


def call(func: str, *args, **kwargs) -> str:
    """Code of a call: call("np.add", "a", "b", out="c") -> 'np.add(a, b, out=c)'."""
    parts = [str(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()]
    return f"{func}({', '.join(parts)})"


class KernelPrinter:
    """Print a code tree as Python source (4-space indents, lines as they come)."""

    indent = "    "

    def doprint(self, node, depth: int = 0) -> str:
        return "".join(self._lines(node, depth))

    def _lines(self, node, depth):
        method = getattr(self, "_print_" + type(node).__name__, None)
        if method is None:
            raise TypeError(f"KernelPrinter cannot print {type(node).__name__}")
        return method(node, depth)

    def _pad(self, depth):
        return self.indent * depth

    def _block(self, body, depth):
        out = []
        for stmt in body:
            out.extend(self._lines(stmt, depth))
        if not body:
            out.append(self._pad(depth) + "pass\n")
        return out

    def _docstring(self, text, depth):
        pad = self._pad(depth)
        text = text.strip("\n")
        if "\n" not in text:
            return [f'{pad}"""{text}"""\n']
        lines = text.split("\n")
        out = [f'{pad}"""{lines[0]}\n']
        out += [(pad + line if line.strip() else "") + "\n" for line in lines[1:]]
        out.append(f'{pad}"""\n')
        return out

    # ----- nodes -----
    def _print_Module(self, node, depth):
        out = self._docstring(node.docstring, 0)
        out.append("\n")
        out += [f"{imp}\n" for imp in node.imports]
        out.append("\n")
        for stmt in node.body:
            if isinstance(stmt, (Function, Source)):
                out.append("\n\n")
            out.extend(self._lines(stmt, 0))
        return out

    def _print_Function(self, node, depth):
        pad = self._pad(depth)
        out = [f"{pad}def {node.name}({', '.join(node.args)}):\n"]
        if node.docstring:
            out += self._docstring(node.docstring, depth + 1)
        out += self._block(node.body, depth + 1)
        return out

    def _print_Source(self, node, depth):
        return [textwrap.indent(textwrap.dedent(node.text).rstrip("\n") + "\n", self._pad(depth))]

    def _print_Assign(self, node, depth):
        return [f"{self._pad(depth)}{node.target} = {node.value}\n"]

    def _print_AugAssign(self, node, depth):
        return [f"{self._pad(depth)}{node.target} {node.op}= {node.value}\n"]

    def _print_Expr(self, node, depth):
        return [f"{self._pad(depth)}{node.value}\n"]

    def _print_For(self, node, depth):
        return [f"{self._pad(depth)}for {node.target} in {node.iterable}:\n"] + \
            self._block(node.body, depth + 1)

    def _print_If(self, node, depth):
        out = [f"{self._pad(depth)}if {node.test}:\n"] + self._block(node.body, depth + 1)
        if node.orelse:
            out += [f"{self._pad(depth)}else:\n"] + self._block(node.orelse, depth + 1)
        return out

    def _print_Comment(self, node, depth):
        pad = self._pad(depth)
        return [f"{pad}# {line}".rstrip() + "\n" for line in node.text.split("\n")]

    def _print_Blank(self, node, depth):
        return ["\n"]

    def _print_Return(self, node, depth):
        return [f"{self._pad(depth)}return {node.value}\n"]

    def _print_Raise(self, node, depth):
        return [f"{self._pad(depth)}raise {node.exception}({node.message})\n"]


__all__ = ["Module", "Function", "Assign", "AugAssign", "Expr", "For", "If", "Comment", "Blank",
           "Return", "Raise", "Source", "call", "KernelPrinter"]
