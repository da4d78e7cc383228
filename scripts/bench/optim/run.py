#!/usr/bin/env python3
"""Optimizer-step benchmark: AdamW on the DemoVLP and STOA base parameter sets,
kinema's fused operator and Lua reference update against torch.optim.AdamW
(foreach, single-tensor, and fused=True where the peer version has it), and
the memory-bandwidth floor. One process per run; medians across rounds.

  /usr/bin/python3 scripts/bench/optim/run.py [--rounds 3] [--threads 1] \
      [--peer /usr/bin/python3] [--peer /path/to/venv/bin/python]

Rounds alternate every implementation, so load from other jobs on a shared
machine falls on all of them. Floor = bytes an AdamW step must move (fp32:
read p, g, m, v and write p, m, v = 28 bytes per parameter) / the bandwidth of
an in-place add measured in the same round (a.add_(b) on 512 MiB: read a, b,
write a, 12 bytes per float). Times are wall and process CPU seconds; on a
shared machine the CPU column is the one to compare (a memory stall counts as
CPU time, time-sharing with other jobs does not).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.dirname(HERE))
from bench_common import run  # noqa: E402
RECIPES = ["demovlp", "stoa"]
BYTES_PER_PARAM = 28


def peer_version(python):
    out = subprocess.run([python, "-c", "import torch; print(torch.__version__.split('+')[0])"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def has_cpu_fused(version):
    major, minor = (int(x) for x in version.split(".")[:2])
    return (major, minor) >= (2, 4)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinema", default=os.path.join(ROOT, "build", "kinema"))
    ap.add_argument("--peer", action="append", help="python with torch (repeatable); default /usr/bin/python3")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "bench_optim"))
    ap.add_argument("--kinds", default="foreach,fused",
                    help="torch.optim.AdamW variants (foreach, single, fused; fused on 2.4+ only)")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--out", default="", help="also write all rows as JSON here")
    a = ap.parse_args()
    peers = a.peer or ["/usr/bin/python3"]
    recipes = a.recipes.split(",")
    os.makedirs(a.work, exist_ok=True)
    lua = os.path.join(HERE, "bench_optim.lua")
    py = os.path.join(HERE, "bench_optim.py")

    shapes = {}
    for recipe in recipes:
        shapes[recipe] = os.path.join(a.work, recipe + "_shapes.json")
        if not os.path.exists(shapes[recipe]):
            print("shapes:", run([a.kinema, "run", lua, "--recipe", recipe, "--shapes_out", shapes[recipe]], 1),
                  flush=True)

    impls = [("kinema_fused", lambda s: [a.kinema, "run", lua, "--shapes", s, "--impl", "fused"]),
             ("kinema_lua", lambda s: [a.kinema, "run", lua, "--shapes", s, "--impl", "lua"])]
    for python in peers:
        version = peer_version(python)
        kinds = [k for k in a.kinds.split(",") if k != "fused" or has_cpu_fused(version)]
        for kind in kinds:
            impls.append((f"torch{version}_{kind}",
                          lambda s, python=python, kind=kind: [python, py, "--shapes", s, "--impl", kind]))

    rows = []
    for r in range(a.rounds):
        stream = run([a.kinema, "run", lua, "--stream_mb", "512", "--threads", str(a.threads)], a.threads)
        rows.append(dict(stream, round=r))
        print(json.dumps(rows[-1]), flush=True)
        for recipe in recipes:
            for name, cmd in impls:
                row = run(cmd(shapes[recipe]) + ["--steps", str(a.steps), "--threads", str(a.threads)], a.threads)
                row.update(round=r, name=name)
                rows.append(row)
                print(json.dumps(row), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)
    report(rows, recipes, [name for name, _ in impls], a.rounds, a.threads)


def median_of(rows, key):
    return statistics.median(r[key] for r in rows)


def report(rows, recipes, names, rounds, threads):
    streams = [r for r in rows if r.get("impl") == "stream_add"]
    wall_bw, cpu_bw = median_of(streams, "gb_per_s"), median_of(streams, "gb_per_cpu_s")
    print(f"\nin-place add bandwidth (median of {rounds}): {wall_bw:.2f} GB/s wall, "
          f"{cpu_bw:.2f} GB per CPU s; {threads} thread(s)\n")
    print("| parameter set | implementation | wall s | CPU s | x floor (CPU) | x torch best (CPU) | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for recipe in recipes:
        mine = [r for r in rows if r.get("recipe") == recipe and "name" in r]
        params, tensors = mine[0]["params"], mine[0]["tensors"]
        floor_wall = params * BYTES_PER_PARAM / (wall_bw * 1e9)
        floor_cpu = params * BYTES_PER_PARAM / (cpu_bw * 1e9)
        cpu = {n: median_of([r for r in mine if r["name"] == n], "cpu_s_median") for n in names}
        best = min(v for n, v in cpu.items() if n.startswith("torch"))
        label = f"{recipe} ({params / 1e6:.2f}M in {tensors})"
        print(f"| {label} | floor: {BYTES_PER_PARAM} B/param / bandwidth | {floor_wall:.3f} | {floor_cpu:.3f} "
              f"| 1.00 | {floor_cpu / best:.2f} | |")
        for n in names:
            row = [r for r in mine if r["name"] == n]
            wall, rss = median_of(row, "step_s_median"), median_of(row, "peak_rss_mb")
            print(f"| {label} | {n} | {wall:.3f} | {cpu[n]:.3f} | {cpu[n] / floor_cpu:.2f} "
                  f"| {cpu[n] / best:.2f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
