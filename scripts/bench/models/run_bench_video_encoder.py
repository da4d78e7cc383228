#!/usr/bin/env python3
"""Side-by-side benchmark: kinema's VideoEncoder (C++ driver, and the Lua
driver when --lua is given) against the same ViT in Python, forward + backward,
each configuration in fresh processes (peak RSS per process). Peers: the ViT
written out in bench_video_encoder.py under each --peers python (Debian's
python3-torch 1.13, a PyTorch 2.x environment), and timm's VisionTransformer
(fused attention) under every 2.x peer. Ratios are against the last peer row.

    python3 scripts/bench/models/run_bench_video_encoder.py \
        --build build [--configs tiny base] [--iters 5] [--threads 2] [--rounds 1] \
        [--peers /usr/bin/python3 .venv-peers/bin/python]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, threads):
    # Every process gets the same intra-op thread count (OpenMP and MKL honour the variables).
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build")
    p.add_argument("--configs", nargs="+", default=["tiny", "base"])
    p.add_argument("--attention", default="frame")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1, help="alternating process pairs per config")
    p.add_argument("--lua", action="store_true", help="also time the Lua driver through the kinema host")
    p.add_argument("--kinema", default=None, help="the host binary for --lua (default: BUILD/kinema)")
    p.add_argument("--peers", nargs="+",
                   default=["/usr/bin/python3", os.path.join(HERE, "..", "..", "..", ".venv-peers", "bin", "python")],
                   help="python executables whose torch runs the peers (scripts/bench/requirements.txt for 2.x)")
    a = p.parse_args()
    peers = {}  # label -> command prefix
    for py in a.peers:
        if not os.path.exists(py):
            sys.exit(f"peer python not found: {py} (see scripts/bench/requirements.txt, or pass --peers)")
        version = subprocess.run([py, "-c", "import torch; print(torch.__version__.split('+')[0])"], check=True,
                                 capture_output=True, text=True).stdout.strip()
        script = [py, os.path.join(HERE, "bench_video_encoder.py")]
        peers[f"torch {version}"] = script + ["--impl", "plain"]
        if not version.startswith("1."):
            peers[f"timm, torch {version}"] = script + ["--impl", "timm"]
    common = ["--iters", str(a.iters), "--warmup", str(a.warmup), "--threads", str(a.threads), "--attention", a.attention]
    print(f"VideoEncoder forward+backward, batch 2, attention={a.attention}, threads={a.threads}, "
          f"median of {a.iters} iterations x {a.rounds} round(s)")
    ref = list(peers)[-1]
    print(f"wall = elapsed time, cpu = process CPU time (robust to a loaded machine); ratios are impl / {ref}")
    print("| config | impl | wall ms | cpu ms | peak RSS MB | wall ratio | cpu ratio | mem ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for config in a.configs:
        sides = {"kinema (C++)": [os.path.join(a.build, "scripts/bench/models/bench_video_encoder")]}
        if a.lua:
            sides["kinema (Lua)"] = [a.kinema or os.path.join(a.build, "kinema"), "run",
                                     os.path.join(HERE, "bench_video_encoder.lua")]
        sides.update(peers)
        results = {side: [] for side in sides}
        for _ in range(a.rounds):
            for side, cmd in sides.items():
                results[side].append(run(cmd + ["--config", config] + common, a.threads))
        med = lambda side, key: statistics.median(x for r in results[side] for x in r[key])
        peak = lambda side: max(r["peak_rss_mb"] for r in results[side])
        for side in sides:
            print(f"| {config} | {side} | {med(side, 'times_ms'):.1f} | {med(side, 'cpu_ms'):.1f} | {peak(side):.1f} "
                  f"| {med(side, 'times_ms') / med(ref, 'times_ms'):.3f} | {med(side, 'cpu_ms') / med(ref, 'cpu_ms'):.3f} "
                  f"| {peak(side) / peak(ref):.3f} |", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
