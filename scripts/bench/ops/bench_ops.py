#!/usr/bin/python3
"""kinema ops vs their peers, side by side in one run.

Run with Debian's /usr/bin/python3 (torch 1.13 = the LibTorch kinema links,
torchvision, scipy) after building the ops library:
    cmake --build build-ops --target kinema_ops
    /usr/bin/python3 scripts/bench/ops/bench_ops.py [--lib build-ops/ops/libkinema_ops.so] [--reps 5]

Method.
* Time: for each benchmark the kinema op and its peer run alternately in one
  process (A, B, A, B, ...) after one warm-up call each, so background load
  hits both alike; the median of --reps runs is printed, with the ratio
  kinema / peer (below 1 = kinema faster).
* Peak memory: torch's CPU allocations are invisible to tracemalloc, so each
  (benchmark, implementation) pair runs once more in a fresh subprocess that
  builds the inputs, notes its resident set (VmRSS), resets the kernel's
  high-water mark (writing 5 to /proc/self/clear_refs; ru_maxrss cannot be
  reset and still holds the peak of importing torch), runs one
  forward+backward and reads the high-water mark (VmHWM). Before that, one
  forward+backward at batch 2 pages in the code and starts the thread pools
  (BLAS, OpenMP): without it, those one-time megabytes were charged to the
  first call (~6 MB of grounding_similarity's 12 MB at B = 64). The difference is
  the extra peak memory the call needed beyond its inputs.
* CPU seconds (user+sys of the process, median) are printed next to wall
  time: on a shared, loaded machine they show the work done when the wall
  clock mostly measures waiting for a core.
* "Largest batch in 8 GB" for the pairwise similarities: peak memory is
  measured at three batch sizes (B = Bv = Bt) and fitted with
  a + b*B + c*B^2 (exact for these ops: inputs and chunks grow linearly, the
  naive all-pairs attention quadratically); the largest B whose fitted peak is
  at most 8 GiB is printed.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DEFAULT_LIB = os.path.join(ROOT, "build-ops", "ops", "libkinema_ops.so")


# ---------------------------------------------------------------- references
def unit(x):
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def cosine(a, b):
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-8)


def masked_softmax(z, valid, dim):
    w = z.masked_fill(~valid, float("-inf")).softmax(dim)
    return torch.nan_to_num(w, nan=0.0)


def rwa_naive(r, mr, t, mt, lam):
    """DemoVLP RWA for all pairs, materialising [Bv,Bt,N,L] and [Bv,Bt,N,d]."""
    bv, n, d = r.shape
    bt, l, _ = t.shape
    c = torch.einsum("ind,jld->ijnl", unit(r), unit(t))
    mrf, mtf = mr.to(r.dtype), mt.to(r.dtype)
    a = masked_softmax(lam * c, mt[None, :, None, :], 3)
    a = a * (a > a.sum(3, keepdim=True) / mtf.sum(1).clamp_min(1)[None, :, None, None]).to(a.dtype)
    alpha = torch.einsum("ijnl,jld->ijnd", a, t)
    s = (cosine(r[:, None].expand(bv, bt, n, d), alpha) * mrf[:, None]).sum(2) / mrf.sum(1).clamp_min(1)[:, None]
    b = masked_softmax(lam * c, mr[:, None, :, None], 2)
    b = b * (b > b.sum(2, keepdim=True) / mrf.sum(1).clamp_min(1)[:, None, None, None]).to(b.dtype)
    beta = torch.einsum("ijnl,ind->ijld", b, r)
    s_t = (cosine(t[None].expand(bv, bt, l, d), beta) * mtf[None]).sum(2) / mtf.sum(1).clamp_min(1)[None]
    return s, s_t.t()


def grounding_naive(g, nouns, mk, tau):
    c = torch.einsum("imd,jkd->ijmk", unit(g), unit(nouns))
    pooled = torch.einsum("ijmk,imd->ijkd", (c / tau).softmax(2), g)
    cs = cosine(nouns[None].expand(g.shape[0], -1, -1, -1), pooled)
    mkf = mk.to(g.dtype)
    return (cs * mkf[None]).sum(2) / mkf.sum(1).clamp_min(1)[None]


# ---------------------------------------------------------------- benchmarks
# Each benchmark: make(scale) -> inputs; run[impl](inputs) -> one forward+backward.
def roi_make(batch=8):
    torch.manual_seed(0)
    frames, hw, ch, per_frame = 12 * batch, 14, 768, 10
    tokens = torch.randn(frames, hw, hw, ch)  # ViT patch grid, [N, H, W, C]
    xy = torch.rand(frames * per_frame, 2) * 10
    wh = torch.rand(frames * per_frame, 2) * 6 + 1
    idx = torch.arange(frames).repeat_interleave(per_frame)[:, None].float()
    boxes = torch.cat([idx, xy, (xy + wh).clamp(max=14)], 1)
    x = tokens.permute(0, 3, 1, 2).requires_grad_(True)  # channels-last [N,C,H,W] view
    grad = torch.randn(frames * per_frame, ch, 7, 7)
    return x, boxes, grad


def roi_run(fn):
    def run(inp):
        x, boxes, grad = inp
        x.grad = None
        out = fn(x, boxes)
        out.backward(grad)
        return out, x.grad
    return run


def assign_make(batch=4096):
    torch.manual_seed(0)
    return torch.rand(batch, 20, 33)


def assign_scipy(cost):
    from scipy.optimize import linear_sum_assignment
    out = []
    for c in cost:  # what STOA's code does: one scipy call per sample
        out.append(linear_sum_assignment(c.numpy(), maximize=True))
    return out


def rwa_make(batch=64, n=8 * 30, l=32, d=256):
    torch.manual_seed(0)
    r = torch.randn(batch, n, d, requires_grad=True)
    t = torch.randn(batch, l, d, requires_grad=True)
    mr = torch.rand(batch, n) > 0.1
    mt = torch.arange(l)[None] < torch.randint(4, l + 1, (batch, 1))
    return r, mr, t, mt


def rwa_run(fn):
    def run(inp):
        r, mr, t, mt = inp
        r.grad = t.grad = None
        s, s_t = fn(r, mr, t, mt, 20.0)
        (s.sum() + 0.5 * s_t.sum()).backward()
        return s, s_t, r.grad, t.grad
    return run


def grounding_make(batch=64, m=32, k=2, d=256):
    torch.manual_seed(0)
    g = torch.randn(batch, m, d, requires_grad=True)
    nouns = torch.randn(batch, k, d, requires_grad=True)
    mk = torch.rand(batch, k) > 0.2
    return g, nouns, mk


def grounding_run(fn):
    def run(inp):
        g, nouns, mk = inp
        g.grad = nouns.grad = None
        out = fn(g, nouns, mk, 0.1)
        out.sum().backward()
        return out, g.grad, nouns.grad
    return run


def benchmarks():
    import torchvision
    k = torch.ops.kinema
    return {
        "roi_align": dict(
            make=roi_make,
            kinema=roi_run(lambda x, b: k.roi_align(x, b, 7, 7, 1.0, -1, True)),
            peer=roi_run(lambda x, b: torchvision.ops.roi_align(x, b, (7, 7), 1.0, -1, True)),
            peer_name="torchvision.ops.roi_align"),
        "linear_assignment": dict(
            make=assign_make,
            kinema=lambda c: k.linear_assignment(c, None, None, True),
            peer=assign_scipy, peer_name="python loop over scipy"),
        "rwa_similarity": dict(
            make=rwa_make, kinema=rwa_run(k.rwa_similarity), peer=rwa_run(rwa_naive),
            peer_name="naive ATen (materialising)"),
        "grounding_similarity": dict(
            make=grounding_make, kinema=grounding_run(k.grounding_similarity),
            peer=grounding_run(grounding_naive), peer_name="naive ATen (materialising)"),
    }


def load(lib):
    torch.ops.load_library(lib)


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field + " not in /proc/self/status")


def measure_memory(name, impl, batch):
    """In this (fresh) process: extra peak RSS of one forward+backward."""
    b = benchmarks()[name]
    # Warm-up on a tiny batch: pages in the code and starts the thread pools
    # (one-time costs that VmHWM would otherwise charge to the measured call).
    b[impl](b["make"](2))
    inp = b["make"]() if batch is None else b["make"](batch)
    before = status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark (VmHWM) to the current RSS
    b[impl](inp)
    return (status_kb("VmHWM") - before) * 1024


def memory_in_subprocess(args, name, impl, batch=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--lib", args.lib, "--threads",
           str(args.threads), "--memory", name, impl]
    if batch is not None:
        cmd += ["--batch", str(batch)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return float("nan")
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"]


def max_diff(a, b):
    if isinstance(a, (tuple, list)):
        return max(max_diff(x, y) for x, y in zip(a, b))
    return (a.detach().double() - b.detach().double()).abs().max().item()


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def time_pair(b, inp, reps):
    wall = {"kinema": [], "peer": []}
    cpu = {"kinema": [], "peer": []}
    results = {}
    for impl in ("kinema", "peer"):
        results[impl] = b[impl](inp)  # warm-up, kept for the accuracy check
    for _ in range(reps):
        for impl in ("kinema", "peer"):
            t0, c0 = time.perf_counter(), cpu_seconds()
            b[impl](inp)
            wall[impl].append(time.perf_counter() - t0)
            cpu[impl].append(cpu_seconds() - c0)
    med = lambda d: {k: statistics.median(v) for k, v in d.items()}
    return med(wall), med(cpu), results


def assignment_check(cost, kinema_out, scipy_out):
    rows, cols = kinema_out
    worst = 0.0
    for i, (r, c) in enumerate(scipy_out):
        want = cost[i].numpy()[r, c].sum(dtype=np.float64)
        got = cost[i].double()[rows[i], cols[i]].sum().item()
        worst = max(worst, abs(got - want))
    return worst


def fit_largest_batch(points, limit):
    b = np.array([p[0] for p in points], dtype=np.float64)
    m = np.array([p[1] for p in points], dtype=np.float64)
    coef = np.polyfit(b, m, 2)  # c*B^2 + b*B + a
    grid = np.arange(1, 100000)
    ok = grid[np.polyval(coef, grid) <= limit]
    if ok.size == grid.size:  # not quadratic: the fit never reaches the limit
        return f">{grid[-1]}"
    return int(ok.max()) if ok.size else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default=DEFAULT_LIB)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (0 = torch's default)")
    ap.add_argument("--only", nargs="*", help="benchmark names to run")
    ap.add_argument("--fit-batches", type=int, nargs=3, default=[16, 32, 64],
                    help="batch sizes whose peak memory is fitted for the 8 GiB estimate")
    ap.add_argument("--skip-timing", action="store_true", help="only the 8 GiB estimate")
    ap.add_argument("--memory", nargs=2, metavar=("NAME", "IMPL"), help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load(args.lib)
    if args.memory:
        print(json.dumps({"peak_bytes": measure_memory(*args.memory, args.batch)}))
        return

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.reps}")
    header = (f"{'benchmark':21} {'kinema s':>9} {'peer s':>9} {'ratio':>6} {'cpu ratio':>9} "
              f"{'kinema MB':>10} {'peer MB':>9} {'mem ratio':>9} {'max |diff|':>10}  peer")
    print(header)
    print("-" * len(header))
    summary = {}
    for name, b in benchmarks().items():
        if args.skip_timing or (args.only and name not in args.only):
            continue
        inp = b["make"]()
        med, cpu, results = time_pair(b, inp, args.reps)
        if name == "linear_assignment":
            diff = assignment_check(inp, results["kinema"], results["peer"])
        else:
            diff = max_diff(results["kinema"], results["peer"])
        mem = {impl: memory_in_subprocess(args, name, impl) for impl in ("kinema", "peer")}
        ratio = med["kinema"] / med["peer"]
        cpu_ratio = cpu["kinema"] / max(cpu["peer"], 1e-9)
        print(f"{name:21} {med['kinema']:9.4f} {med['peer']:9.4f} {ratio:6.3f} {cpu_ratio:9.3f} "
              f"{mem['kinema'] / 2**20:10.1f} {mem['peer'] / 2**20:9.1f} "
              f"{mem['kinema'] / max(mem['peer'], 1):9.3f} {diff:10.2e}  {b['peer_name']}", flush=True)
        summary[name] = dict(time=med, cpu=cpu, memory=mem, diff=diff)

    limit = 8 * 2**30
    for name in ("rwa_similarity", "grounding_similarity"):
        if args.only and name not in args.only:
            continue
        line = []
        for impl in ("kinema", "peer"):
            pts = [(bs, memory_in_subprocess(args, name, impl, bs)) for bs in args.fit_batches]
            sizes = "/".join(str(bs) for bs in args.fit_batches)
            line.append(f"{impl}: B <= {fit_largest_batch(pts, limit)} "
                        f"(peak MB at B={sizes}: {'/'.join(f'{p[1] / 2**20:.0f}' for p in pts)})")
        print(f"largest batch in 8 GiB, {name}: " + "; ".join(line), flush=True)


if __name__ == "__main__":
    main()
