"""The Python peer of bench_dispatch.lua (Debian's python3-torch, same LibTorch).
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


for _ in range(50):
    step()
steps = max(200, iters // 100)
t0 = clock()
for _ in range(steps):
    step()
report("MLP train step", clock() - t0, steps)
