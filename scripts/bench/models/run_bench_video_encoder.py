#!/usr/bin/env python3
"""Side-by-side benchmark: kinema's VideoEncoder (C++ driver, or the Lua driver
when --lua is given) against the same ViT in Debian's python3-torch, forward +
backward, each configuration in fresh processes (peak RSS per process).

    /usr/bin/python3 scripts/bench/models/run_bench_video_encoder.py \
        --build build-models [--configs tiny base] [--iters 5] [--threads 2] [--rounds 1]
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
    a = p.parse_args()
    common = ["--iters", str(a.iters), "--warmup", str(a.warmup), "--threads", str(a.threads), "--attention", a.attention]
    print(f"VideoEncoder forward+backward, batch 2, attention={a.attention}, threads={a.threads}, "
          f"median of {a.iters} iterations x {a.rounds} round(s)")
    print("wall = elapsed time, cpu = process CPU time (robust to a loaded machine); ratios are impl / python")
    print(f"{'config':<6} {'impl':<8} {'wall ms':>10} {'cpu ms':>10} {'peak RSS MB':>12} {'wall ratio':>11} "
          f"{'cpu ratio':>10} {'mem ratio':>10}")
    for config in a.configs:
        results = {"kinema": [], "python": [], "lua": []}
        for _ in range(a.rounds):
            results["kinema"].append(run([os.path.join(a.build, "scripts/bench/models/bench_video_encoder"),
                                          "--config", config] + common, a.threads))
            results["python"].append(run(["/usr/bin/python3", os.path.join(HERE, "bench_video_encoder.py"),
                                          "--config", config] + common, a.threads))
            if a.lua:
                results["lua"].append(run([a.kinema or os.path.join(a.build, "kinema"), "run",
                                           os.path.join(HERE, "bench_video_encoder.lua"),
                                           "--config", config] + common, a.threads))
        py_t = statistics.median(t for r in results["python"] for t in r["times_ms"])
        py_c = statistics.median(t for r in results["python"] for t in r["cpu_ms"])
        py_m = max(r["peak_rss_mb"] for r in results["python"])
        for impl in ("kinema", "lua", "python"):
            if not results[impl]:
                continue
            t = statistics.median(x for r in results[impl] for x in r["times_ms"])
            c = statistics.median(x for r in results[impl] for x in r["cpu_ms"])
            m = max(r["peak_rss_mb"] for r in results[impl])
            print(f"{config:<6} {impl:<8} {t:>10.1f} {c:>10.1f} {m:>12.1f} {t / py_t:>11.3f} {c / py_c:>10.3f} "
                  f"{m / py_m:>10.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
