"""write_atomic: whole files or none, with ordinary permissions."""
import os
import stat

import pytest

from lstmsym.errors import LstmsymError
from lstmsym.io import write_atomic


def test_written_file_has_the_permissions_open_would_give(tmp_path):
    p = write_atomic(tmp_path / "a.tex", "x")
    reference = tmp_path / "b.tex"
    reference.write_text("x")
    assert stat.S_IMODE(os.stat(p).st_mode) == stat.S_IMODE(os.stat(reference).st_mode)


def test_failed_write_leaves_nothing_behind(tmp_path):
    class Boom:
        pass
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "a.txt", Boom())
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(LstmsymError, match="does not exist"):
        write_atomic(tmp_path / "nope" / "a.txt", "x")
