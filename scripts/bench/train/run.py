#!/usr/bin/env python3
"""Training-step benchmark: clips/s, peak memory and the time split (data wait,
forward, backward, optimizer) of each recipe's training step, one process per
run, and the VTC baseline's step against the same step written in PyTorch.

  /usr/bin/python3 scripts/bench/train/run.py                 # tiny presets, 3 rounds (~7 min on 2 cores)
  /usr/bin/python3 scripts/bench/train/run.py --base          # + the paper-size presets: one step each, ~1 h on 2 cores
  /usr/bin/python3 scripts/bench/train/run.py --quick         # 1 round, 4 steps: a smoke run
  /usr/bin/python3 scripts/bench/train/run.py --base-only --base-steps 2 --base-warmup 1   # paper-size presets only
  python3 scripts/bench/train/run.py --kinema build-gpu/kinema --device cuda --recipes stoa --base-only \
      --base-steps 10 --base-warmup 3 --base-batch 8 [--inputs tensors]    # on a GPU (scripts/dev.sh gpu-check)

Rounds alternate kinema's baseline and the PyTorch peer, then the other
recipes, so that load from other jobs on a shared machine falls on both sides.
Per run: the median step time over the timed steps (clips/s = batch / median);
across runs: the median of those. Peak RSS is the process's VmHWM / ru_maxrss
(kinema's includes its loader threads and prefetched batches; the peer has
no loader, its data are tensors built before the loop). With --device cuda
each row also gives the peak GPU memory (torch.cuda.max_memory_allocated over
the timed steps) and the autocast dtype of the step (the recipe's train.amp,
bf16, unless --amp says otherwise); --inputs tensors feeds random tensors of
the loader's shapes instead of decoded clips (bench_train.lua).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.dirname(HERE))
from bench_common import run  # noqa: E402
RECIPES = ["baseline", "stoa", "svilm", "oatrans", "demovlp"]
# objectives that need a second clip in the batch: STOA's VTM draws its
# negatives from the batch, S-ViLM's cut-and-paste pastes another clip
NEED_PAIRS = ("stoa", "svilm")


def kinema(a, recipe, preset, steps, warmup, batch=0):
    cmd = [a.kinema, "run", os.path.join(HERE, "bench_train.lua"), "--recipe", recipe, "--preset", preset,
           "--steps", str(steps), "--warmup", str(warmup), "--threads", str(a.threads), "--data", a.data,
           "--device", a.device, "--amp", a.amp, "--inputs", a.inputs]
    if a.workers >= 0:
        cmd += ["--workers", str(a.workers)]
    if batch:
        cmd += ["--batch", str(batch)]
    return run(cmd, a.threads)


def peer(a, python, steps, warmup, compile_=False):
    return run([python, os.path.join(HERE, "bench_train.py"), "--steps", str(steps), "--warmup",
                str(warmup), "--threads", str(a.threads)] + (["--compile"] if compile_ else []) +
               (["--batch", str(a.batch)] if a.batch else []), a.threads)


def peer_sides(a):
    """{label: (python, compile)}: each peer python eagerly, and 2.x ones under torch.compile too."""
    sides = {}
    for py in a.peers:
        if shutil.which(py) is None:  # a path or a name on PATH (gpu-check passes python3)
            sys.exit(f"peer python not found: {py} (see scripts/bench/requirements.txt, or pass --peers)")
        version = subprocess.run([py, "-c", "import torch; print(torch.__version__)"], check=True,
                                 capture_output=True, text=True).stdout.strip()
        sides[f"PyTorch {version}"] = (py, False)
        if not version.startswith("1."):
            sides[f"PyTorch {version} compile"] = (py, True)
    return sides


def summary(rows):
    """Medians across runs of each run's figures; the largest peak."""
    med = lambda key: statistics.median(r[key] for r in rows)
    split = {k: statistics.median(r["split_pct"][k] for r in rows) for k in rows[0]["split_pct"]}
    return {"clips_per_s": rows[0]["batch"] / med("step_s_median"), "step_s": med("step_s_median"), "cpu_s": med("cpu_s_median"),
            "compute_s": med("compute_s_per_step"), "peak_mb": max(r["peak_rss_mb"] for r in rows),
            "split": split, "runs": len(rows), "batch": rows[0]["batch"], "params": rows[0]["params"],
            "frames": rows[0]["frames"], "amp": rows[0].get("amp", "none"),
            "peak_gpu_mb": max(r["peak_gpu_mb"] for r in rows) if "peak_gpu_mb" in rows[0] else None,
            # DemoVLP reads region features, not pixels
            "size": f"{rows[0]['regions']} regions" if rows[0].get("regions") else f"{rows[0]['image_size']}^2"}


def print_row(recipe, preset, rows, gpu):
    s = summary(rows)
    sp = s["split"]
    device = f" {s['amp']} | {s['peak_gpu_mb']:.0f} |" if gpu else ""
    print(f"| {recipe} | {preset} | {s['batch']} | {s['frames']} x {s['size']} | {s['params'] / 1e6:.2f}M "
          f"| {s['clips_per_s']:.3g} | {s['step_s']:.3g} | {s['peak_mb']:.0f} |{device} {sp['data']:.1f} "
          f"| {sp['forward']:.1f} | {sp['backward']:.1f} | {sp['optimizer']:.1f} | {s['runs']} |", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kinema", default=os.path.join(ROOT, "build", "kinema"))
    p.add_argument("--data", default=os.path.join(ROOT, "runs", "bench_train_synth"),
                   help="synthetic benchmark (generated on first use: 48 train / 8 test videos)")
    p.add_argument("--rounds", type=int, default=3, help="runs per recipe (tiny)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per run (tiny)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=0, help="batch of the tiny runs and the peer (default: the preset's, 24)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads on both sides")
    p.add_argument("--device", default="cpu", help="kinema's device (cuda needs a CUDA build of kinema)")
    p.add_argument("--amp", default="recipe", choices=["recipe", "bf16", "fp16", "none"],
                   help="kinema's autocast on CUDA (recipe: its train.amp, bf16)")
    p.add_argument("--inputs", default="loader", choices=["loader", "tensors"],
                   help="tensors: random tensors of the loader's shapes, no decoding (stoa and baseline)")
    p.add_argument("--workers", type=int, default=-1, help="kinema's loader workers (default: the recipe's)")
    p.add_argument("--recipes", nargs="+", default=RECIPES, choices=RECIPES)
    p.add_argument("--base", action="store_true", help="also the paper-size presets (one run each)")
    p.add_argument("--base-only", action="store_true", help="only the paper-size presets (no tiny runs, no peer)")
    p.add_argument("--base-steps", type=int, default=1)
    p.add_argument("--base-warmup", type=int, default=0)
    p.add_argument("--base-batch", type=int, default=1,
                   help="batch of the base presets (STOA and S-ViLM get at least 2, see NEED_PAIRS)")
    p.add_argument("--quick", action="store_true", help="1 round of 4 steps after 1 warm-up")
    p.add_argument("--peers", nargs="+", default=["/usr/bin/python3", os.path.join(ROOT, ".venv-peers", "bin", "python")],
                   help="python executables whose torch runs the baseline peer (scripts/bench/requirements.txt "
                        "for 2.x; a 2.x peer also runs under torch.compile)")
    p.add_argument("--compile-warmup", type=int, default=3, help="warm-up steps of the torch.compile peer")
    a = p.parse_args()
    if a.quick:
        a.rounds, a.steps, a.warmup = 1, 4, 1
    if a.base_only:
        a.base, a.rounds = True, 0

    tiny = {r: [] for r in a.recipes}
    sides = peer_sides(a) if "baseline" in a.recipes and a.rounds else {}
    peer_rows = {label: [] for label in sides}
    for rnd in range(a.rounds):
        for recipe in a.recipes:
            tiny[recipe].append(kinema(a, recipe, "tiny", a.steps, a.warmup, a.batch))
            if recipe == "baseline":
                for label, (py, compiled) in sides.items():
                    peer_rows[label].append(peer(a, py, a.steps, a.compile_warmup if compiled else a.warmup, compiled))
        print(f"round {rnd + 1}/{a.rounds} done", file=sys.stderr, flush=True)
    print(f"training step, {a.threads} intra-op thread(s), device {a.device}; tiny: median of {a.rounds} run(s) "
          f"of the median of {a.steps} steps after {a.warmup} warm-up" +
          (f"; base: one run, median of {a.base_steps} step(s) after {a.base_warmup} warm-up" if a.base else "") +
          ("; inputs: random tensors of the loader's shapes (no video decoding, no data wait)"
           if a.inputs == "tensors" else "; inputs: the synthetic benchmark through kinema's loader"))
    if "baseline" in tiny and a.rounds:
        k = summary(tiny["baseline"])
        peers = {label: summary(rows) for label, rows in peer_rows.items()}
        print("\nVTC baseline, tiny preset (batch %d): kinema vs the same step in PyTorch" % k["batch"])
        print("| | clips/s | step s | CPU s | compute s | peak RSS MB | params |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, s in [("kinema", k)] + list(peers.items()):
            print(f"| {name} | {s['clips_per_s']:.2f} | {s['step_s']:.3f} | {s['cpu_s']:.3f} | {s['compute_s']:.3f} "
                  f"| {s['peak_mb']:.0f} | {s['params']:,} |")
        for name, t in peers.items():
            print(f"| ratio kinema / {name} | {k['clips_per_s'] / t['clips_per_s']:.2f} | {k['step_s'] / t['step_s']:.2f} "
                  f"| {k['cpu_s'] / t['cpu_s']:.2f} | {k['compute_s'] / t['compute_s']:.2f} "
                  f"| {k['peak_mb'] / t['peak_mb']:.2f} | |")
        print("(clips/s ratio > 1 and time ratios < 1 favour kinema; compute = forward + backward + "
              "optimizer, i.e. without kinema's data wait)")

    gpu = a.device.startswith("cuda")
    if gpu:
        print("\n| recipe | preset | batch | frames x size | params | clips/s | step s | peak RSS MB | amp "
              "| peak GPU MB | data % | forward % | backward % | optimizer % | runs |")
        print("|---|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    else:
        print("\n| recipe | preset | batch | frames x size | params | clips/s | step s | peak MB | data % | forward % "
              "| backward % | optimizer % | runs |")
        print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for recipe in a.recipes if a.rounds else []:
        print_row(recipe, "tiny", tiny[recipe], gpu)
    # the paper-size steps take minutes each: their rows follow as they finish
    if a.base:
        for recipe in a.recipes:
            batch = max(a.base_batch, 2) if recipe in NEED_PAIRS else a.base_batch
            print_row(recipe, "base", [kinema(a, recipe, "base", a.base_steps, a.base_warmup, batch)], gpu)


if __name__ == "__main__":
    main()
