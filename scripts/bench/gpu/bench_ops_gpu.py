#!/usr/bin/env python3
"""kinema's operators on a GPU next to their peers (run by `scripts/dev.sh gpu-check`).

Same benchmarks, inputs and peers as scripts/bench/ops/bench_ops.py (whose
input builders and naive references it imports), on --device:
  roi_align fwd+bwd vs torchvision.ops.roi_align,
  linear_assignment 4096 x (20x33), maximize (goal: <= 1 ms on an H100) vs a
    python loop over scipy on the CPU (what STOA's code does),
  rwa_similarity / grounding_similarity fwd+bwd vs the naive materialising
    ATen versions: time and peak device memory.
Run with the python of a CUDA PyTorch and the ops library built against it:
    python scripts/bench/gpu/bench_ops_gpu.py --lib build-gpu/ops/libkinema_ops.so --device cuda
--small shrinks every size (the dry run uses it on the CPU to exercise the
script; its figures are not benchmarks). Prints a markdown table; --json
writes the rows.

Method: one warm-up call each, then --reps alternating (kinema, peer) calls;
the median wall time of each, measured around a device synchronisation. Peak
memory: torch.cuda.max_memory_allocated over one call after
reset_peak_memory_stats, minus the memory held before the call (on the CPU:
not measured, '-').
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ops"))
import bench_ops  # noqa: E402  (input builders and naive references)


def to_device(inputs, device):
    out = []
    for x in inputs if isinstance(inputs, (tuple, list)) else [inputs]:
        if torch.is_tensor(x):
            y = x.detach().to(device)
            out.append(y.requires_grad_(x.requires_grad))
        else:
            out.append(x)
    return tuple(out) if isinstance(inputs, (tuple, list)) else out[0]


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, inp, device):
    sync(device)
    t0 = time.perf_counter()
    out = fn(inp)
    sync(device)
    return time.perf_counter() - t0, out


def peak_mb(fn, inp, device):
    if not device.startswith("cuda"):
        return None
    sync(device)
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn(inp)
    sync(device)
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def max_diff(a, b):
    a = a if isinstance(a, (tuple, list)) else [a]
    b = b if isinstance(b, (tuple, list)) else [b]
    return max(float((x.detach().double().cpu() - y.detach().double().cpu()).abs().max()) if x.numel() else 0.0
               for x, y in zip(a, b))


def assignment_total(cost, rows, cols):
    valid = rows >= 0
    picked = cost.gather(1, rows.clamp_min(0).unsqueeze(2).expand(-1, -1, cost.size(2)))
    return (picked.gather(2, cols.clamp_min(0).unsqueeze(2)).squeeze(2) * valid).sum(1)


def benchmarks(small):
    k = torch.ops.kinema
    out = {}
    try:
        import torchvision
        roi_peer = bench_ops.roi_run(lambda x, b: torchvision.ops.roi_align(x, b, (7, 7), 1.0, -1, True))
        roi_peer_name = "torchvision " + torchvision.__version__
    except ImportError:
        roi_peer, roi_peer_name = None, "torchvision not installed"
    out["roi_align fwd+bwd (96 frames x 14x14x768, 960 boxes, 7x7)"] = dict(
        make=lambda: bench_ops.roi_make(1 if small else 8),
        kinema=bench_ops.roi_run(lambda x, b: k.roi_align(x, b, 7, 7, 1.0, -1, True)),
        peer=roi_peer, peer_name=roi_peer_name)

    def assign_peer(cost):  # scipy on the CPU, as STOA's code runs it
        return bench_ops.assign_scipy(cost.cpu())

    try:
        import scipy  # noqa: F401
        peer, peer_name = assign_peer, "python loop over scipy (CPU)"
    except ImportError:
        peer, peer_name = None, "scipy not installed"
    out["linear_assignment 4096 x (20x33), maximize"] = dict(
        make=lambda: bench_ops.assign_make(64 if small else 4096),
        kinema=lambda c: k.linear_assignment(c, None, None, True), peer=peer, peer_name=peer_name,
        check="assignment")
    out["rwa_similarity fwd+bwd (Bv=Bt=64, N=240, L=32, d=256)"] = dict(
        make=lambda: bench_ops.rwa_make(*( (4, 24, 8, 32) if small else (64,))),
        kinema=bench_ops.rwa_run(k.rwa_similarity), peer=bench_ops.rwa_run(bench_ops.rwa_naive),
        peer_name="naive ATen (materialising)")
    out["grounding_similarity fwd+bwd (Bv=Bt=64, M=32, K=2, d=256)"] = dict(
        make=lambda: bench_ops.grounding_make(*((4, 8, 2, 32) if small else (64,))),
        kinema=bench_ops.grounding_run(k.grounding_similarity),
        peer=bench_ops.grounding_run(bench_ops.grounding_naive), peer_name="naive ATen (materialising)")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", required=True, help="libkinema_ops.so built against this python's torch")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--small", action="store_true", help="tiny sizes (exercises the script; not a benchmark)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    torch.ops.load_library(args.lib)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("bench_ops_gpu.py: --device %s but torch.cuda.is_available() is False" % args.device)
    rows = []
    for name, b in benchmarks(args.small).items():
        inp = to_device(b["make"](), args.device)
        times = {"kinema": [], "peer": []}
        _, ours = timed(b["kinema"], inp, args.device)
        theirs = None
        if b["peer"] is not None:
            _, theirs = timed(b["peer"], inp, args.device)
        for _ in range(args.reps):
            times["kinema"].append(timed(b["kinema"], inp, args.device)[0])
            if b["peer"] is not None:
                times["peer"].append(timed(b["peer"], inp, args.device)[0])
        row = {"benchmark": name + (" [--small: tiny sizes]" if args.small else ""), "device": args.device,
               "peer": b["peer_name"],
               "kinema_ms": 1e3 * statistics.median(times["kinema"]),
               "peer_ms": 1e3 * statistics.median(times["peer"]) if times["peer"] else None,
               "kinema_peak_mb": peak_mb(b["kinema"], inp, args.device),
               "peer_peak_mb": peak_mb(b["peer"], inp, args.device) if b["peer"] is not None else None}
        if theirs is not None:
            if b.get("check") == "assignment":
                cost = inp.detach().cpu()
                mine = assignment_total(cost, ours[0].cpu(), ours[1].cpu())
                scipy_total = torch.tensor([float(cost[i][r, c].sum()) for i, (r, c) in enumerate(theirs)])
                row["max_abs_diff"] = float((mine - scipy_total.to(mine.dtype)).abs().max())
            else:
                row["max_abs_diff"] = max_diff(ours, theirs)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    def fmt(v, spec="%.3f"):
        return "-" if v is None else spec % v

    print("| benchmark | device | kinema ms | peer | peer ms | ratio | kinema peak MB | peer peak MB | max abs diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = r["kinema_ms"] / r["peer_ms"] if r["peer_ms"] else None
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["benchmark"], r["device"], fmt(r["kinema_ms"]), r["peer"], fmt(r["peer_ms"]), fmt(ratio),
            fmt(r["kinema_peak_mb"], "%.1f"), fmt(r["peer_peak_mb"], "%.1f"),
            fmt(r.get("max_abs_diff"), "%.2g")))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
