"""Runs bench_dist.lua (kinema launch --nproc 2) and bench_dist.py (two
python processes) alternately, RUNS times each, on loopback Gloo, and prints
the median over runs of each case's median wall time side by side with the
ratio kinema/Python and each side's peak RSS per rank. The peer's torch is
that of --peer-python (default: Debian's python3-torch 1.13).
Usage: /usr/bin/python3 scripts/bench/dist/run.py [--runs 5] [--iters 20] [--kinema build/kinema]
           [--peer-python .venv-peers/bin/python]"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess

here = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--iters", type=int, default=20)
parser.add_argument("--kinema", default=os.path.join(here, "..", "..", "..", "build", "kinema"))
parser.add_argument("--peer-python", default="/usr/bin/python3",
                    help="python whose torch.distributed runs the peer (a 2.x one: scripts/bench/requirements.txt)")
args = parser.parse_args()
if shutil.which(args.peer_python) is None:
    raise SystemExit(f"--peer-python {args.peer_python}: not an executable file or a command on PATH")
peer_torch = subprocess.run([args.peer_python, "-c", "import torch; print(torch.__version__)"], check=True,
                            capture_output=True, text=True).stdout.strip()
kinema_version = subprocess.run([args.kinema, "--version"], check=True, capture_output=True, text=True).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(procs):
    """JSON rows printed by the processes and the largest peak RSS (KiB; for the
    launcher, wait4 reports the largest of its reaped ranks)."""
    rows, peak = [], 0
    for proc in procs:
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{proc.args[0]} failed with status {status}")
        rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        peak = max(peak, usage.ru_maxrss)
    return rows, peak


def kinema():
    cmd = [args.kinema, "launch", "--nproc", "2", os.path.join(here, "bench_dist.lua"), str(args.iters)]
    return wait([subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)])


def python():
    port = free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([args.peer_python, os.path.join(here, "bench_dist.py"), str(args.iters)],
                                      stdout=subprocess.PIPE, text=True, env=env))
    return wait(procs)


results = {"kinema": {}, "python": {}}
peaks = {"kinema": 0, "python": 0}
for _ in range(args.runs):
    for side, fn in (("kinema", kinema), ("python", python)):
        rows, peak = fn()
        peaks[side] = max(peaks[side], peak)
        for row in rows:
            results[side].setdefault(row["case"], []).append(row["ms"])

print(f"kinema: {kinema_version}; python: torch {peer_torch} ({args.peer_python})")
print(f"2 ranks, Gloo on loopback, 1 compute thread each; median of {args.runs} runs of the median of "
      f"{args.iters} repetitions, wall ms")
print(f"{'case':42s} {'kinema':>9s} {'python':>9s} {'ratio':>7s}")
for case, values in results["kinema"].items():
    k = statistics.median(values)
    p = statistics.median(results["python"][case])
    print(f"{case:42s} {k:9.3f} {p:9.3f} {k / p:7.2f}")
print(f"peak RSS per rank (max over runs): kinema {peaks['kinema'] / 1024:.0f} MB, python {peaks['python'] / 1024:.0f} MB")
