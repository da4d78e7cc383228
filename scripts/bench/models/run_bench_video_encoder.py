#!/usr/bin/env python3
"""Side-by-side benchmark: kinema's VideoEncoder (C++ driver, and the Lua
driver when --lua is given) against the same ViT in Python, forward + backward,
each configuration in fresh processes (peak RSS per process). Peers: the ViT
written out in bench_video_encoder.py under each --peers python (Debian's
python3-torch 1.13, a PyTorch 2.x environment), and timm's VisionTransformer
(fused attention) under every 2.x peer that has timm. Ratios are against the
last peer row.

    python3 scripts/bench/models/run_bench_video_encoder.py \
        --build build [--configs tiny base] [--iters 5] [--threads 2] [--rounds 1] \
        [--peers /usr/bin/python3 .venv-peers/bin/python]

On a GPU (scripts/dev.sh gpu-check runs this): --device cuda --amp bf16 runs
every side on the device under bf16 autocast and the table gives ms/iter and
peak GPU memory (torch.cuda.max_memory_allocated on both sides); --no-cxx
leaves out the C++ driver (it has no device option), so with --lua the sides
are kinema from Lua and the PyTorch eager peers.
"""
import argparse
import json
import os
import shutil
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
    p.add_argument("--cxx", action=argparse.BooleanOptionalAction, default=True,
                   help="time the C++ driver (CPU only; --no-cxx leaves it out)")
    p.add_argument("--device", default="cpu", help="device of the Lua driver and the peers (cuda needs --no-cxx)")
    p.add_argument("--amp", default="none", choices=["none", "bf16"], help="bf16: forward and loss under autocast")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--kinema", default=None, help="the host binary for --lua (default: BUILD/kinema)")
    p.add_argument("--peers", nargs="+",
                   default=["/usr/bin/python3", os.path.join(HERE, "..", "..", "..", ".venv-peers", "bin", "python")],
                   help="python executables whose torch runs the peers (scripts/bench/requirements.txt for 2.x)")
    a = p.parse_args()
    if a.cxx and (a.device != "cpu" or a.amp != "none" or a.batch != 2):
        sys.exit("the C++ driver runs on the CPU in float32 with batch 2 only: pass --no-cxx with --device, --amp or --batch")
    if not a.cxx and not a.lua:
        sys.exit("--no-cxx without --lua leaves no kinema side")
    peers = {}  # label -> command prefix
    missing_timm = []
    for py in a.peers:
        if shutil.which(py) is None:  # a path or a name on PATH (gpu-check passes python3)
            sys.exit(f"peer python not found: {py} (see scripts/bench/requirements.txt, or pass --peers)")
        version = subprocess.run([py, "-c", "import torch; print(torch.__version__.split('+')[0])"], check=True,
                                 capture_output=True, text=True).stdout.strip()
        script = [py, os.path.join(HERE, "bench_video_encoder.py")]
        peers[f"torch {version}"] = script + ["--impl", "plain"]
        if not version.startswith("1."):
            if subprocess.run([py, "-c", "import timm"], capture_output=True).returncode == 0:
                peers[f"timm, torch {version}"] = script + ["--impl", "timm"]
            else:
                missing_timm.append(py)
    common = ["--iters", str(a.iters), "--warmup", str(a.warmup), "--threads", str(a.threads), "--attention", a.attention]
    if not a.cxx:
        common += ["--device", a.device, "--amp", a.amp, "--batch", str(a.batch)]
    gpu = a.device.startswith("cuda")
    print(f"VideoEncoder forward+backward, batch {a.batch}, attention={a.attention}, device={a.device}, amp={a.amp}, "
          f"threads={a.threads}, median of {a.iters} iterations after {a.warmup} warm-up x {a.rounds} round(s)")
    for py in missing_timm:
        print(f"(no timm row: {py} cannot import timm)")
    ref = list(peers)[-1]
    if gpu:
        print(f"ms = elapsed time per iteration, each ending with a device synchronisation; peak GPU = "
              f"max_memory_allocated over the timed iterations (weights, gradients, activations); ratios are impl / {ref}")
        print("| config | impl | ms/iter | peak GPU MB | time ratio | mem ratio |")
        print("|---|---|---:|---:|---:|---:|")
    else:
        print(f"wall = elapsed time, cpu = process CPU time (robust to a loaded machine); ratios are impl / {ref}")
        print("| config | impl | wall ms | cpu ms | peak RSS MB | wall ratio | cpu ratio | mem ratio |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
    for config in a.configs:
        sides = {}
        if a.cxx:
            sides["kinema (C++)"] = [os.path.join(a.build, "scripts/bench/models/bench_video_encoder")]
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
        if gpu:
            gpu_peak = lambda side: max(r["peak_gpu_mb"] for r in results[side])
            for side in sides:
                print(f"| {config} | {side} | {med(side, 'times_ms'):.2f} | {gpu_peak(side):.0f} "
                      f"| {med(side, 'times_ms') / med(ref, 'times_ms'):.3f} | {gpu_peak(side) / gpu_peak(ref):.3f} |",
                      flush=True)
            continue
        for side in sides:
            print(f"| {config} | {side} | {med(side, 'times_ms'):.1f} | {med(side, 'cpu_ms'):.1f} | {peak(side):.1f} "
                  f"| {med(side, 'times_ms') / med(ref, 'times_ms'):.3f} | {med(side, 'cpu_ms') / med(ref, 'cpu_ms'):.3f} "
                  f"| {peak(side) / peak(ref):.3f} |", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
