#!/usr/bin/env python3
"""Peer of bench_train.lua for the VTC baseline: its training step written in
Debian's python3-torch, the way a PyTorch user would write it, at the sizes of
the baseline's tiny preset (lua/kinema/recipes/baseline.lua = the STOA tiny
encoders on CLIP-style blocks, lua/kinema/models/stoa.lua):

  video: CLIP ViT, 16x16 patches (no conv bias) of 4 frames of 64x64, a [CLS]
         per frame, spatial + temporal position embeddings, ln_pre, 4 pre-norm
         layers of width 96 (4 heads, fused qkv, quick_gelu, MLP x4) attending
         within each frame, final LayerNorm; the frames' [CLS] averaged and
         projected to 64
  text:  CLIP text encoder, width 64, 2 layers, 4 heads, causal + padding mask,
         pooled at the last real token, projected to 64
  loss:  symmetric InfoNCE on cosine similarities over a learnable temperature
         (CLIP's logit_scale, tau clamped to [0.01, 1])
  step:  AdamW (lr 5e-4, weight decay 0.05), gradient clipping at norm 1,
         warm-up + cosine schedule, as kinema.train.Trainer does

on random tensors of the loader's shapes (video [B,4,3,64,64] normalised,
ids [B,24] with padding). Runs under Debian's python3-torch 1.13 or a PyTorch
2.x environment (scripts/bench/requirements.txt); --compile (2.x) wraps the
model's loss in torch.compile (inductor; forward and, through AOTAutograd,
backward; the optimizer stays eager), compiled during the warm-up steps.
Timed like bench_train.lua (forward = model + loss, backward, optimizer =
clip + step + zero_grad + schedule; data = taking the next pre-built batch).
Prints one JSON line.

  /usr/bin/python3 scripts/bench/train/bench_train.py --steps 10 --warmup 2 --batch 24 --threads 2
  .venv-peers/bin/python scripts/bench/train/bench_train.py --compile
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


class Layer(nn.Module):
    """Pre-norm transformer layer with a fused qkv projection."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def attention(self, x, mask):
        n, s, d = x.shape
        q, k, v = self.qkv(x).view(n, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q * (d // self.heads) ** -0.5) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
        out = scores.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(n, s, d))

    def forward(self, x, mask=None):
        x = x + self.attention(self.norm1(x), mask)
        return x + self.fc2(quick_gelu(self.fc1(self.norm2(x))))


class VideoEncoder(nn.Module):
    def __init__(self, image, frames, patch, dim, depth, heads, embed):
        super().__init__()
        n = (image // patch) ** 2
        self.patch_embed = nn.Conv2d(3, dim, patch, patch, bias=False)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + n, dim) * 0.02)
        self.time_embed = nn.Parameter(torch.randn(1, frames, dim) * 0.02)
        self.norm_pre = nn.LayerNorm(dim, eps=1e-5)
        self.blocks = nn.ModuleList(Layer(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.proj = nn.Parameter(torch.randn(dim, embed) * 0.02)

    def forward(self, video):  # [B, T, 3, H, W] -> [B, E]
        b, t = video.shape[:2]
        x = self.patch_embed(video.flatten(0, 1)).flatten(2).transpose(1, 2)  # [B*T, N, D]
        d = x.shape[-1]
        time_embed = self.time_embed.unsqueeze(2)  # [1, T, 1, D]
        x = x.view(b, t, -1, d) + self.pos_embed[:, 1:].unsqueeze(1) + time_embed
        cls = (self.cls_token + self.pos_embed[:, :1]).unsqueeze(1) + time_embed
        x = self.norm_pre(torch.cat([cls.expand(b, t, 1, d), x], 2))
        s = x.shape[2]
        x = x.reshape(b * t, s, d)  # attention within each frame
        for block in self.blocks:
            x = block(x)
        cls_out = self.norm(x).view(b, t, s, d)[:, :, 0]
        return cls_out.mean(1) @ self.proj


class TextEncoder(nn.Module):
    def __init__(self, vocab, max_len, dim, depth, heads, embed):
        super().__init__()
        self.word_embed = nn.Embedding(vocab, dim)
        self.pos_embed = nn.Parameter(torch.randn(max_len, dim) * 0.01)
        self.blocks = nn.ModuleList(Layer(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.proj = nn.Parameter(torch.randn(dim, embed) * 0.02)

    def forward(self, ids, valid):  # [B, L] int64, [B, L] bool -> [B, E]
        b, length = ids.shape
        x = self.word_embed(ids) + self.pos_embed[:length]
        allowed = valid.unsqueeze(1) & torch.ones(length, length, dtype=torch.bool).tril()
        mask = torch.zeros(b, 1, length, length).masked_fill(~allowed.unsqueeze(1), -1e30)
        for block in self.blocks:
            x = block(x, mask)
        x = self.norm(x)
        last = valid.long().sum(1) - 1
        return x[torch.arange(b), last] @ self.proj


class DualEncoder(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.video = VideoEncoder(image=64, frames=4, patch=16, dim=96, depth=4, heads=4, embed=64)
        self.text = TextEncoder(vocab=vocab, max_len=24, dim=64, depth=2, heads=4, embed=64)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def loss(self, video, ids, valid):
        v = F.normalize(self.video(video), dim=-1)
        t = F.normalize(self.text(ids, valid), dim=-1)
        tau = torch.exp(-self.logit_scale).clamp(0.01, 1.0)
        logits = v @ t.t() / tau
        target = torch.arange(v.shape[0])
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def random_batch(batch, vocab, text_len, generator):
    video = torch.randn(batch, 4, 3, 64, 64, generator=generator)
    lengths = torch.randint(6, text_len + 1, (batch,), generator=generator)
    valid = torch.arange(text_len).unsqueeze(0) < lengths.unsqueeze(1)
    ids = torch.randint(1, vocab, (batch, text_len), generator=generator) * valid
    return video, ids, valid


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--vocab", type=int, default=35, help="the synthetic benchmark's vocabulary size")
    p.add_argument("--compile", action="store_true", help="torch.compile the loss (PyTorch 2.x)")
    a = p.parse_args()
    if a.compile and not hasattr(torch, "compile"):
        p.error(f"--compile needs PyTorch 2.x (this is {torch.__version__})")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = DualEncoder(a.vocab).train()
    params = sum(x.numel() for x in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.05)
    total, warm = 300, 30  # the tiny preset's schedule
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * min(1, (s - warm) / (total - warm)))))
    generator = torch.Generator().manual_seed(0)
    batches = [random_batch(a.batch, a.vocab, 24, generator) for _ in range(4)]
    loss_fn = torch.compile(model.loss) if a.compile else model.loss
    timing = dict(data=0.0, forward=0.0, backward=0.0, optimizer=0.0)
    step_s, cpu_s = [], []
    loss = None
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            timing = {k: 0.0 for k in timing}
        t_start, c_start = time.perf_counter(), time.process_time()
        video, ids, valid = batches[step % len(batches)]
        t_data = time.perf_counter()
        loss = loss_fn(video, ids, valid)
        t_fwd = time.perf_counter()
        loss.backward()
        t_bwd = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        sched.step()
        t_end = time.perf_counter()
        timing["data"] += t_data - t_start
        timing["forward"] += t_fwd - t_data
        timing["backward"] += t_bwd - t_fwd
        timing["optimizer"] += t_end - t_bwd
        if step >= a.warmup:
            step_s.append(t_end - t_start)
            cpu_s.append(time.process_time() - c_start)
    phases = sum(timing.values())
    median = statistics.median(step_s)
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "compile": a.compile, "recipe": "baseline", "preset": "tiny", "batch": a.batch, "frames": 4, "image_size": 64,
        "threads": torch.get_num_threads(), "steps": a.steps, "warmup": a.warmup, "params": params,
        "clips_per_s": round(a.batch / median, 3), "clips_per_s_mean": round(a.batch * a.steps / sum(step_s), 3),
        "step_s_median": round(median, 4), "cpu_s_median": round(statistics.median(cpu_s), 4),
        "compute_s_per_step": round((phases - timing["data"]) / a.steps, 4),
        "split_pct": {k: round(100 * v / phases, 1) for k, v in timing.items()},
        "step_times_s": [round(x, 4) for x in step_s],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "last_loss": round(loss.item(), 4),
    }))


if __name__ == "__main__":
    main()
