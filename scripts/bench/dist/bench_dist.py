"""The cases of bench_dist.lua with torch.distributed (python3-torch, Gloo):
all_reduce, the usual differentiable gather (autograd.Function with an
all_reduce in backward, as in CLIP-style training code) and bucketed gradient
averaging (flatten, all_reduce, divide, copy back). Rank 0 prints JSON lines.
Started by run.py with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set."""
import json
import statistics
import sys
import time

import torch
import torch.distributed as dist

iters = int(sys.argv[1]) if len(sys.argv) > 1 else 20
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()


def bench(case, fn):
    fn()
    times = []
    for _ in range(iters):
        dist.barrier()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    if rank == 0:
        print(json.dumps({"case": case, "ms": statistics.median(times)}), flush=True)


for n in (1024, 262144, 4194304):
    t = torch.randn(n)
    bench(f"all_reduce {n} floats", lambda: dist.all_reduce(t))


class Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.rows = x.shape[0]
        out = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(out, x)
        return torch.cat(out, 0)

    @staticmethod
    def backward(ctx, g):
        g = g.contiguous().clone()
        dist.all_reduce(g)
        return g[rank * ctx.rows:(rank + 1) * ctx.rows]


x = torch.randn(64, 512, requires_grad=True)


def gather_step():
    Gather.apply(x).sum().backward()
    x.grad = None


bench("all_gather [64,512] fwd+bwd", gather_step)

torch.manual_seed(0)
params = []
for i in range(1, 51):
    p = torch.randn((256, 320) if i % 2 == 0 else (320,), requires_grad=True)
    p.grad = torch.randn(p.shape)
    params.append(p)
for _ in range(4):
    p = torch.randn(1024, 1024, requires_grad=True)
    p.grad = torch.randn(1024, 1024)
    params.append(p)


def average_gradients(limit=25 * 1024 * 1024):
    bucket, size = [], 0

    def flush():
        if not bucket:
            return
        flat = torch.cat([g.reshape(-1) for g in bucket])
        dist.all_reduce(flat)
        flat.div_(world)
        offset = 0
        for g in bucket:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
        bucket.clear()

    for p in params:
        bucket.append(p.grad)
        size += p.grad.numel() * p.grad.element_size()
        if size >= limit:
            flush()
            size = 0
    flush()


bench("average_gradients 54 tensors 6.3M floats", average_gradients)
dist.destroy_process_group()
