"""Generated kernels are deterministic: same input, same bytes, in this process and in fresh
processes with a different hash seed (set iteration order must not leak into the code)."""
import hashlib
import os
import subprocess
import sys

from lstmsym.cells import cell_names
from lstmsym.codegen import generate_kernel

SCRIPT = ("import hashlib\n"
          "from lstmsym.cells import cell_names\n"
          "from lstmsym.codegen import generate_kernel\n"
          "for name in cell_names():\n"
          "    for dtype in ('float64', 'float32'):\n"
          "        src = generate_kernel(name, dtype)\n"
          "        print(name, dtype, hashlib.sha256(src.encode()).hexdigest())\n")


def digests():
    return "".join(f"{name} {dtype} {hashlib.sha256(generate_kernel(name, dtype).encode()).hexdigest()}\n"
                   for name in cell_names() for dtype in ("float64", "float32"))


def test_same_bytes_twice_in_one_process():
    for name in cell_names():
        assert generate_kernel(name) == generate_kernel(name)


def test_same_bytes_across_processes_and_hash_seeds():
    here = digests()
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                           env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stdout == here


def test_dtype_and_command_only_change_their_lines():
    a = generate_kernel("lstm", "float64").splitlines()
    b = generate_kernel("lstm", "float32", command="lstmsym codegen lstm --dtype float32").splitlines()
    changed = [(x, y) for x, y in zip(a, b) if x != y]
    assert len(a) == len(b)
    assert changed == [("    lstmsym codegen lstm", "    lstmsym codegen lstm --dtype float32"),
                       ("DTYPE = np.float64", "DTYPE = np.float32")]
