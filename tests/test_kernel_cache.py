"""load_kernel's cache directory: one file per kernel source, old hashes of a cell pruned."""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from lstmsym.codegen import load_kernel


def test_cache_keeps_one_current_file_per_cell_and_prunes_old_hashes(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cache = tmp_path / "lstmsym-kernels"
    cache.mkdir()
    old = time.time() - 7200
    stale = cache / "lstm_0123456789abcdef.py"            # same cell, another hash, 2 h old
    recent = cache / "lstm_fedcba9876543210.py"           # same cell, another hash, just now
    other_cell = cache / "lstm1997_0123456789abcdef.py"    # another cell sharing the prefix
    unrelated = cache / "notes.txt"
    for f in (stale, recent, other_cell, unrelated):
        f.write_text("# placeholder\n")
    for f in (stale, other_cell, unrelated):
        os.utime(f, (old, old))

    kernel = load_kernel("lstm")
    written = [f for f in cache.iterdir() if f.name.startswith("lstm_")
               and f not in (stale, recent)]
    assert len(written) == 1 and kernel.__file__ == str(written[0])
    assert not stale.exists()
    assert recent.exists() and other_cell.exists() and unrelated.exists()

    # the same source again: the file is reused, not rewritten
    mtime = written[0].stat().st_mtime_ns
    again = load_kernel("lstm")
    assert written[0].stat().st_mtime_ns == mtime and again.__file__ == kernel.__file__
    params = again.init_params(3, 2)
    out, _ = again.forward(params, np.zeros((2, 1, 3)))
    assert out["h"].shape == (2, 1, 2)
