"""Back-propagation schedules around the one-step derivation: full BPTT and truncated BPTT.

Truncated BPTT(k1, k2) as in the lecture notes (seed 002: "carry hidden states forward in time
forever, but only backpropagate for some smaller number of steps"; Williams & Peng 1990): the
forward pass runs over the whole sequence; every k1 steps, at the end ``e`` of a chunk, one
backward pass takes the output gradients of the chunk's steps (e-k1, e] and propagates them back
through at most k2 steps, down to step ``e - k2 + 1``; nothing flows further back. With
k1 = k2 = k this is exactly a forward pass that detaches the state every k steps. The last chunk
may be shorter. ``d_final`` (the gradient at the last state) enters the last backward pass.

Hochreiter & Schmidhuber's 1997 truncation is not a schedule but a rule of the step (derive.py,
``truncation="1997"``).
"""
from __future__ import annotations

from dataclasses import dataclass

from lstmsym.errors import TruncationError


@dataclass(frozen=True)
class Window:
    """One backward pass: output gradients of steps [loss_start, end] (inclusive, 0-based),
    propagated back to ``floor`` (inclusive)."""

    end: int
    loss_start: int
    floor: int


def parse_truncate(truncate, T: int):
    """Normalise a ``truncate`` argument: None, "1997", k, or (k1, k2) -> None/"1997"/(k1, k2)."""
    if truncate is None or truncate == "none":
        return None
    if truncate == "1997":
        return "1997"
    if isinstance(truncate, str):
        try:
            parts = [int(p) for p in truncate.replace(":", ",").split(",")]
        except ValueError:
            raise TruncationError(f"truncation {truncate!r}: use k, 'k1,k2' or '1997'") from None
        truncate = parts[0] if len(parts) == 1 else tuple(parts)
    if isinstance(truncate, bool):
        raise TruncationError(f"truncation {truncate!r}: use None, k, (k1, k2) or '1997'")
    if isinstance(truncate, int):
        k1 = k2 = truncate
    else:
        try:
            k1, k2 = truncate
            k1, k2 = int(k1), int(k2)
        except (TypeError, ValueError):
            raise TruncationError(
                f"truncation {truncate!r}: use None, k, (k1, k2) or '1997'") from None
    check_window("k1", k1)
    check_window("k2", k2)
    if k1 > T:
        raise TruncationError(f"truncation k1 = {k1} is longer than the sequence (T = {T})")
    return (k1, k2)


def check_window(name: str, k: int) -> None:
    """``k1`` or ``k2`` must be at least 1 (``TruncationError`` naming it otherwise)."""
    if k < 1:
        raise TruncationError(f"truncation {name} = {k}: {name} must be at least 1")


def windows(T: int, k1: int, k2: int) -> list:
    """The backward passes of truncated BPTT(k1, k2) over a sequence of length T.

    Chunk c covers steps [c k1, (c+1) k1 - 1] (the last one cut at T - 1); its backward pass
    reaches down to step (c+1) k1 - k2, so every chunk, the last one included, behaves alike.

    >>> windows(7, 3, 3)
    [Window(end=2, loss_start=0, floor=0), Window(end=5, loss_start=3, floor=3), Window(end=6, loss_start=6, floor=6)]
    """
    out = []
    for start in range(0, T, k1):
        out.append(Window(min(start + k1, T) - 1, start, max(0, start + k1 - k2)))
    return out
