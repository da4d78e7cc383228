"""Helpers shared by the benchmark drivers under scripts/bench/."""
import json
import os
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def run(cmd, threads):
    """Runs cmd from the repository root with `threads` intra-op threads (OpenMP and MKL honour
    the variables) and returns its last JSON line; exits naming the command if it fails."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if not rows:
        sys.exit(f"no JSON line from: {' '.join(cmd)}\n{proc.stdout[-2000:]}")
    return rows[-1]
