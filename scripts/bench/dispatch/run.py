"""Runs bench_dispatch.lua (kinema) and bench_dispatch.py under each peer
Python (Debian's python3-torch 1.13 and a PyTorch 2.x environment) in turn,
RUNS times each, and prints the median per-iteration CPU time of each case side
by side with the ratios kinema/peer and each side's peak RSS.
Usage: python3 scripts/bench/dispatch/run.py [--runs 5] [--iters 100000] [--kinema build/kinema]
           [--peers /usr/bin/python3 .venv-peers/bin/python]"""
import argparse
import json
import os
import statistics
import subprocess

here = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--iters", type=int, default=100000)
parser.add_argument("--kinema", default=os.path.join(here, "..", "..", "..", "build", "kinema"))
parser.add_argument("--peers", nargs="+",
                    default=["/usr/bin/python3", os.path.join(here, "..", "..", "..", ".venv-peers", "bin", "python")],
                    help="python executables whose torch is the peer (scripts/bench/requirements.txt for 2.x)")
args = parser.parse_args()
for py in args.peers:
    if not os.path.exists(py):
        raise SystemExit(f"peer python not found: {py} (see scripts/bench/requirements.txt, or pass --peers)")


def torch_version(py):
    return subprocess.run([py, "-c", "import torch; print(torch.__version__)"], check=True, capture_output=True,
                          text=True).stdout.strip()


peers = {f"torch {torch_version(py)}": py for py in args.peers}


def run(cmd):
    """Output rows and the child's own peak RSS in KiB (from wait4's rusage)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")], usage.ru_maxrss


sides = {"kinema": [args.kinema, "run", os.path.join(here, "bench_dispatch.lua"), str(args.iters)]}
for name, py in peers.items():
    sides[name] = [py, os.path.join(here, "bench_dispatch.py"), str(args.iters)]
results = {side: {} for side in sides}
peaks = {side: 0 for side in sides}
for _ in range(args.runs):
    for side, cmd in sides.items():
        rows, peak = run(cmd)
        peaks[side] = max(peaks[side], peak)
        for row in rows:
            results[side].setdefault(row["case"], []).append(row["us_per_iter"])

names = list(peers)
print(f"median of {args.runs} runs, CPU us per iteration, 1 thread; ratio = kinema / peer")
print("| case | kinema us | " + " | ".join(f"{n} us" for n in names) + " | " +
      " | ".join(f"ratio vs {n}" for n in names) + " |")
print("|---|---:|" + "---:|" * (2 * len(names)))
cases = list(results["kinema"])
cases += [c for n in names for c in results[n] if c not in cases]
for case in cases:
    k = statistics.median(results["kinema"][case]) if case in results["kinema"] else None
    p = [statistics.median(results[n][case]) if case in results[n] else None for n in names]
    cell = lambda v: "-" if v is None else f"{v:.3f}"
    ratio = lambda v: "-" if v is None or k is None else f"{k / v:.2f}"
    print(f"| {case} | {cell(k)} | " + " | ".join(cell(v) for v in p) + " | " + " | ".join(ratio(v) for v in p) + " |")
print("peak RSS (max over runs): " + ", ".join(f"{side} {peaks[side] / 1024:.0f} MB" for side in sides))
