#!/usr/bin/python3
"""Cross-check kinema::linear_assignment's totals against scipy on many random samples.

  /usr/bin/python3 scripts/bench/ops/check_assignment.py [--lib build/ops/libkinema_ops.so]

Uniform, normal x 1e3 and integer (0-3, full of ties) costs; shapes 1..22 x
1..22 with random valid row/column counts; minimise and maximise; then the
benchmark's 4096 x 20x33 batch. A sample passes when kinema's pairs are a
valid matching of min(rows, cols) pairs whose total equals scipy's.
Exits non-zero on any failure.
"""
import argparse
import sys

import torch
from scipy.optimize import linear_sum_assignment


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default="build/ops/libkinema_ops.so")
    args = ap.parse_args()
    torch.ops.load_library(args.lib)
    k = torch.ops.kinema
    g = torch.Generator().manual_seed(1)
    bad = checked = 0
    for kind in ("uniform", "normal", "int"):
        for rows_max in range(1, 25, 3):
            for cols_max in range(1, 25, 3):
                batch = 50
                shape = (batch, rows_max, cols_max)
                if kind == "uniform":
                    cost = torch.rand(shape, generator=g)
                elif kind == "normal":
                    cost = torch.randn(shape, generator=g) * 1e3
                else:
                    cost = torch.randint(0, 4, shape, generator=g).float()
                rc = torch.randint(0, rows_max + 1, (batch,), generator=g)
                cc = torch.randint(0, cols_max + 1, (batch,), generator=g)
                for maximize in (False, True):
                    rows, cols = k.linear_assignment(cost, rc, cc, maximize)
                    for b in range(batch):
                        m = cost[b, :rc[b], :cc[b]].double().numpy()
                        r, c = linear_sum_assignment(m, maximize=maximize)
                        want = m[r, c].sum()
                        keep = rows[b] >= 0
                        kr, kc = rows[b][keep].numpy(), cols[b][keep].numpy()
                        ok = (len(kr) == len(r) and len(set(kr)) == len(kr) and len(set(kc)) == len(kc)
                              and abs(m[kr, kc].sum() - want) <= 1e-9 * max(1.0, abs(want)))
                        checked += 1
                        bad += not ok
    cost = torch.rand(4096, 20, 33, generator=g)
    rows, cols = k.linear_assignment(cost, None, None, True)
    for b in range(cost.size(0)):
        m = cost[b].double().numpy()
        r, c = linear_sum_assignment(m, maximize=True)
        checked += 1
        bad += abs(m[rows[b].numpy(), cols[b].numpy()].sum() - m[r, c].sum()) > 1e-9
    print(f"{checked} samples, {bad} with a different total or an invalid matching")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
