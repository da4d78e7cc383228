#!/usr/bin/env python3
"""Optimizer-step benchmark: AdamW on the DemoVLP and STOA base parameter sets,
kinema's fused operator and Lua reference update against torch.optim.AdamW
(foreach, single-tensor, and fused=True where the peer version has it), and
the memory-bandwidth floor. One process per run; medians across rounds.

  /usr/bin/python3 scripts/bench/optim/run.py [--rounds 3] [--threads 1] \
      [--peer /usr/bin/python3] [--peer /path/to/venv/bin/python]

Rounds alternate every implementation, so load from other jobs on a shared
machine falls on all of them. Floor = bytes an AdamW step must move (fp32:
read p, g, m, v and write p, m, v = 28 bytes per parameter) / measured copy
bandwidth (dst.copy_(src) of 512 MiB: 8 bytes moved per float).
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
    ap.add_argument("--out", default="", help="also write all rows as JSON here")
    a = ap.parse_args()
    peers = a.peer or ["/usr/bin/python3"]
    os.makedirs(a.work, exist_ok=True)
    lua = os.path.join(HERE, "bench_optim.lua")
    py = os.path.join(HERE, "bench_optim.py")

    shapes = {}
    for recipe in RECIPES:
        shapes[recipe] = os.path.join(a.work, recipe + "_shapes.json")
        if not os.path.exists(shapes[recipe]):
            print("shapes:", run([a.kinema, "run", lua, "--recipe", recipe, "--shapes_out", shapes[recipe]], 1),
                  flush=True)

    impls = [("kinema_fused", lambda s: [a.kinema, "run", lua, "--shapes", s, "--impl", "fused"]),
             ("kinema_lua", lambda s: [a.kinema, "run", lua, "--shapes", s, "--impl", "lua"])]
    for python in peers:
        version = peer_version(python)
        kinds = ["foreach", "single"] + (["fused"] if has_cpu_fused(version) else [])
        for kind in kinds:
            impls.append((f"torch{version}_{kind}",
                          lambda s, python=python, kind=kind: [python, py, "--shapes", s, "--impl", kind]))

    rows = []
    for r in range(a.rounds):
        copy = run([a.kinema, "run", lua, "--copy_mb", "512", "--threads", str(a.threads)], a.threads)
        rows.append(dict(copy, round=r))
        print(json.dumps(rows[-1]), flush=True)
        for recipe in RECIPES:
            for name, cmd in impls:
                row = run(cmd(shapes[recipe]) + ["--steps", str(a.steps), "--threads", str(a.threads)], a.threads)
                row.update(round=r, name=name)
                rows.append(row)
                print(json.dumps(row), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)

    bandwidth = statistics.median(r["gb_per_s"] for r in rows if r.get("impl") == "copy")
    print(f"\ncopy bandwidth (median of {a.rounds}): {bandwidth:.2f} GB/s, {a.threads} thread(s)\n")
    print("| parameter set | params | implementation | step s (median) | x bandwidth floor | x kinema fused |")
    print("|---|---:|---|---:|---:|---:|")
    for recipe in RECIPES:
        mine = [r for r in rows if r.get("recipe") == recipe and "name" in r]
        params = mine[0]["params"]
        floor = params * BYTES_PER_PARAM / (bandwidth * 1e9)
        fused = statistics.median(r["step_s_median"] for r in mine if r["name"] == "kinema_fused")
        print(f"| {recipe} | {params / 1e6:.2f}M | floor ({BYTES_PER_PARAM} B/param) | {floor:.3f} | 1.00 | |")
        for name, _ in impls:
            s = statistics.median(r["step_s_median"] for r in mine if r["name"] == name)
            print(f"| {recipe} | {params / 1e6:.2f}M | {name} | {s:.3f} | {s / floor:.2f} | {s / fused:.2f} |")


if __name__ == "__main__":
    main()
