#!/usr/bin/env python3
"""The peer of bench_optim.lua: torch.optim.AdamW (lr 1e-4, weight decay 0.01)
over float32 tensors of the shapes in --shapes (written by bench_optim.lua
--shapes_out), random gradients, median step time (wall and process CPU). One JSON line.

  python3 scripts/bench/optim/bench_optim.py --shapes FILE --impl foreach|single|fused \
      [--steps 5] [--warmup 1] [--threads 1]

foreach=True is PyTorch's multi-tensor path (1.13 and 2.x); fused=True exists
on CPU from PyTorch 2.4; single is foreach=False (one tensor at a time).
Run with any interpreter that has torch (Debian's /usr/bin/python3 has 1.13).
"""
import argparse
import json
import resource
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--impl", choices=["foreach", "single", "fused"], required=True)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.shapes) as f:
        spec = json.load(f)
    torch.manual_seed(0)
    params = []
    for s in spec["shapes"]:
        s = s if isinstance(s, list) else []  # kinema.json writes a 0-d shape (empty table) as {}
        p = torch.nn.Parameter(torch.randn(s) * 0.02)
        p.grad = torch.randn(s) * 1e-3
        params.append(p)
    kwargs = {"foreach": a.impl == "foreach"}
    if a.impl == "fused":
        kwargs = {"fused": True}
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, **kwargs)
    for _ in range(a.warmup):
        opt.step()
    times, cpu_times = [], []
    for _ in range(a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.step()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    print(json.dumps({
        "impl": "torch%s_%s" % (torch.__version__.split("+")[0], a.impl), "recipe": spec["recipe"],
        "params": sum(p.numel() for p in params), "tensors": len(params), "threads": torch.get_num_threads(),
        "steps": a.steps, "warmup": a.warmup, "step_s_median": round(statistics.median(times), 4),
        "cpu_s_median": round(statistics.median(cpu_times), 4),
        "step_times_s": [round(t, 4) for t in times],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
