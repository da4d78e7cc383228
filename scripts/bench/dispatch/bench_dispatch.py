"""The Python peer of bench_dispatch.lua: Debian's python3-torch (the same
LibTorch 1.13 as kinema) or a PyTorch 2.x (scripts/bench/requirements.txt),
which also times the MLP step with the model under torch.compile.
Prints JSON lines {case, us_per_iter}. Usage: python3 bench_dispatch.py [iterations]"""
import json
import sys
import time

import torch

iters = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
torch.set_num_threads(1)
clock = time.process_time  # CPU time, as os.clock() on the Lua side


def report(case, seconds, n):
    print(json.dumps({"case": case, "us_per_iter": round(seconds / n * 1e6, 4)}))


for size in ([1], [64, 64]):
    a, b, c = torch.randn(size), torch.randn(size), torch.randn(size)
    name = "1-element" if len(size) == 1 else "64x64"
    for _ in range(1000):
        _ = a * b + c
    t0 = clock()
    for _ in range(iters):
        _ = a * b + c
    report(f"a*b+c {name} (2 ops)", clock() - t0, iters)
    t0 = clock()
    for _ in range(iters):
        _ = torch.add(a, b)
    report(f"torch.add {name}", clock() - t0, iters)
    t0 = clock()
    for _ in range(iters):
        _ = a.mul(b)
    report(f"a:mul(b) {name}", clock() - t0, iters)

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                            torch.nn.ReLU(), torch.nn.Linear(256, 10))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))


def step():
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()


def time_step(case):
    for _ in range(50):  # warm-up (under torch.compile: tracing and code generation too)
        step()
    steps = max(200, iters // 100)
    t0 = clock()
    for _ in range(steps):
        step()
    report(case, clock() - t0, steps)


time_step("MLP train step")
if hasattr(torch, "compile"):
    # the same step with the model compiled by inductor (forward and, through
    # AOTAutograd, backward); the optimizer stays eager, as most users leave it
    model = torch.compile(model)
    time_step("MLP train step (torch.compile)")
