"""Writing files safely: whole or not at all, with errors a user can read."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lstmsym.errors import LstmsymError


def write_atomic(path, data) -> Path:
    """Write ``data`` (str or bytes) to ``path`` via a temporary file and a rename.

    No partial file is ever left behind: on any error the temporary file is removed and a
    ``LstmsymError`` names the path and the reason.
    """
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise LstmsymError(f"cannot write {path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise LstmsymError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as fh:
            fh.write(data)
        # mkstemp creates the file private (0600); give it the permissions open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise LstmsymError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_quietly(p):
    try:
        os.unlink(p)
    except OSError:
        pass
