#!/usr/bin/env python3
"""Peer of bench_video_encoder.cpp: the same video ViT (per-frame patches and
[CLS], spatial + temporal position embeddings, pre-norm timm blocks with a fused
qkv, exact GELU, final LayerNorm) in Python torch. --impl plain: written here
the way timm writes it (explicit softmax attention; runs on Debian's
python3-torch 1.13); --impl timm: timm's own VisionTransformer (its patch
embedding, position embedding, blocks and norm; fused attention through
F.scaled_dot_product_attention on PyTorch 2.x) with the time embedding added
per frame (scripts/bench/requirements.txt). Prints one JSON line like the C++
driver. --device cuda --amp bf16: forward and loss under torch.autocast
(backward outside it), a torch.cuda.synchronize() closing every timed
iteration, and peak_gpu_mb = torch.cuda.max_memory_allocated over the timed
iterations (reset after warm-up), as bench_video_encoder.lua does."""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, dim * 4)
        self.fc2 = nn.Linear(dim * 4, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class VideoViT(nn.Module):
    def __init__(self, image, frames, dim, depth, heads, attention="frame", patch=16):
        super().__init__()
        n = (image // patch) ** 2
        self.attention = attention
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + n, dim) * 0.02)
        self.time_embed = nn.Parameter(torch.randn(1, frames, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, video):  # [B, T, C, H, W]
        b, t = video.shape[:2]
        x = self.patch_embed(video.flatten(0, 1)).flatten(2).transpose(1, 2)  # [B*T, N, D]
        d = x.shape[-1]
        x = x.reshape(b, t, -1, d)
        time_embed = self.time_embed[:, :t].unsqueeze(2)
        x = x + self.pos_embed[:, 1:].unsqueeze(1) + time_embed
        cls = (self.cls_token + self.pos_embed[:, :1]).unsqueeze(1) + time_embed
        x = torch.cat([cls.expand(b, t, 1, d), x], 2)
        s = x.shape[2]
        for blk in self.blocks:
            if self.attention == "joint":
                x = blk(x.reshape(b, t * s, d)).reshape(b, t, s, d)
            else:
                x = blk(x.reshape(b * t, s, d)).reshape(b, t, s, d)
        return self.norm(x)


class TimmVideoViT(nn.Module):
    """timm's VisionTransformer applied per frame, with a learned time embedding
    added to every token of a frame after timm's position embedding."""

    def __init__(self, image, frames, dim, depth, heads, attention="frame", patch=16):
        super().__init__()
        import timm
        if attention != "frame":
            raise SystemExit("--impl timm runs per-frame attention only")
        self.vit = timm.models.vision_transformer.VisionTransformer(
            img_size=image, patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads, num_classes=0)
        self.time_embed = nn.Parameter(torch.randn(1, frames, 1, dim) * 0.02)

    def forward(self, video):  # [B, T, C, H, W]
        b, t = video.shape[:2]
        x = self.vit._pos_embed(self.vit.patch_embed(video.flatten(0, 1)))  # [B*T, 1+N, D]
        x = (x.unflatten(0, (b, t)) + self.time_embed[:, :t]).flatten(0, 1)
        x = self.vit.norm(self.vit.blocks(x))
        return x.unflatten(0, (b, t))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="tiny", choices=["tiny", "base"])
    p.add_argument("--attention", default="frame", choices=["frame", "joint"])
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--impl", default="plain", choices=["plain", "timm"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="none", choices=["none", "bf16"])
    p.add_argument("--batch", type=int, default=2)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit(f"--device {a.device} but torch.cuda.is_available() is False")
    batch = a.batch
    if a.config == "tiny":
        image, frames, dim, depth, heads = 64, 4, 64, 2, 4
    else:
        image, frames, dim, depth, heads = 224, 8, 768, 12, 12
    torch.manual_seed(0)
    model = (TimmVideoViT if a.impl == "timm" else VideoViT)(image, frames, dim, depth, heads, a.attention)
    model = model.train().to(device)
    video = torch.randn(batch, frames, 3, image, image).to(device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    times, cpu_times = [], []
    for i in range(a.warmup + a.iters):
        if cuda and i == a.warmup:
            torch.cuda.reset_peak_memory_stats()
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        model.zero_grad(set_to_none=False)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=a.amp == "bf16"):
            loss = model(video).pow(2).mean()
        loss.backward()
        sync()
        end, cpu_end = time.perf_counter(), time.process_time()
        if i >= a.warmup:
            times.append((end - start) * 1000.0)
            cpu_times.append((cpu_end - cpu_start) * 1000.0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    fused = bool(model.vit.blocks[0].attn.fused_attn) if a.impl == "timm" else False
    peak_gpu = round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None
    print(json.dumps({"impl": a.impl, "torch": torch.__version__, "fused_attn": fused, "config": a.config, "threads": torch.get_num_threads(),
                      "device": a.device, "amp": a.amp, "batch": batch, "peak_gpu_mb": peak_gpu,
                      "times_ms": [round(x, 2) for x in times],
                      "cpu_ms": [round(x, 2) for x in cpu_times],
                      "median_ms": round(sorted(times)[len(times) // 2], 2), "peak_rss_mb": round(peak, 1)}))


if __name__ == "__main__":
    main()
