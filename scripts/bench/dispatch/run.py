"""Runs bench_dispatch.lua (kinema) and bench_dispatch.py (python3-torch)
alternately, RUNS times each, and prints the median per-iteration CPU time of
each case side by side with the ratio kinema/Python and each side's peak RSS.
Usage: /usr/bin/python3 scripts/bench/dispatch/run.py [--runs 5] [--iters 100000] [--kinema build/kinema]"""
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
args = parser.parse_args()


def run(cmd):
    """Output rows and the child's own peak RSS in KiB (from wait4's rusage)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")], usage.ru_maxrss


results = {"kinema": {}, "python": {}}
peaks = {"kinema": 0, "python": 0}
for _ in range(args.runs):
    for side, cmd in (("kinema", [args.kinema, "run", os.path.join(here, "bench_dispatch.lua"), str(args.iters)]),
                      ("python", ["/usr/bin/python3", os.path.join(here, "bench_dispatch.py"), str(args.iters)])):
        rows, peak = run(cmd)
        peaks[side] = max(peaks[side], peak)
        for row in rows:
            results[side].setdefault(row["case"], []).append(row["us_per_iter"])

print(f"median of {args.runs} runs, CPU us per iteration, 1 thread")
print(f"{'case':28s} {'kinema':>10s} {'python':>10s} {'ratio':>7s}")
for case, values in results["kinema"].items():
    k = statistics.median(values)
    p = statistics.median(results["python"][case])
    print(f"{case:28s} {k:10.3f} {p:10.3f} {k / p:7.2f}")
print(f"peak RSS (max over runs): kinema {peaks['kinema'] / 1024:.0f} MB, python {peaks['python'] / 1024:.0f} MB")
