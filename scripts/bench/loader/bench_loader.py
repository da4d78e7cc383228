#!/usr/bin/env python3
"""Loader benchmark: kinema's threaded loader against the readers researchers
use: OpenCV VideoCapture, PyAV, torchcodec and decord (the anchors' loader).

  .venv-peers/bin/python scripts/bench/loader/bench_loader.py [--build build] [--videos 8] [--runs 3]

(the peers' environment: scripts/bench/requirements.txt). Makes synthetic
H.264 videos with `kinema_bench_loader synth` (224p = 398x224 and 480p =
854x480, 25 fps, 10 s, keyframes every 1 s or 10 s), then for T = 8 and 16
uniformly sampled frames (middle of T equal segments), resized (shorter side
224, bilinear) and centre-cropped to 224x224 RGB, measures clips/s:
  kinema      kinema_bench_loader read: Loader, 2 worker threads
  opencv      cv2.VideoCapture, CAP_PROP_POS_FRAMES seek per frame, 2 processes
  pyav        av, seek to each target (backward to its keyframe) then decode up
              to it, or decode straight on when the target is near; 2 processes
  torchcodec  VideoDecoder(seek_mode='exact', 1 FFmpeg thread) with its
              decoder-native bilinear Resize, get_frames_at(targets); 2 processes
  decord      VideoReader(width, height, num_threads=1), get_batch(targets);
              2 processes
torchcodec and decord are given the frame size (to size their resize) instead
of probing it; all crop in numpy with the same box. Median of --runs runs.
"same frames": max |kinema - peer| over every pixel of every clip.
"""
import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time

import av
import cv2
import decord
import numpy as np
import torch
from torchcodec.decoders import VideoDecoder
from torchcodec.transforms import Resize

SIZE = 224
cv2.setNumThreads(1)
torch.set_num_threads(1)


def uniform(n, t):
    return [((2 * k + 1) * n) // (2 * t) for k in range(t)]


def crop_box(w, h):
    if w <= h:
        sw, sh = SIZE, round(h * SIZE / w)
    else:
        sw, sh = round(w * SIZE / h), SIZE
    return sw, sh, (sw - SIZE) // 2, (sh - SIZE) // 2


def read_opencv(args):
    path, t = args
    cap = cv2.VideoCapture(path)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    out = []
    for i in uniform(n, t):
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, frame = cap.read()
        if not ok:
            raise RuntimeError('%s: frame %d' % (path, i))
        h, w = frame.shape[:2]
        sw, sh, x0, y0 = crop_box(w, h)
        frame = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), (sw, sh),
                           interpolation=cv2.INTER_LINEAR)
        out.append(frame[y0:y0 + SIZE, x0:x0 + SIZE].transpose(2, 0, 1))
    cap.release()
    return np.stack(out)


def read_pyav(args):
    path, t = args
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_count = 1
        n = s.frames
        fps = float(s.average_rate)
        tb = float(s.time_base)
        gop_s = 1.0
        sw, sh, x0, y0 = crop_box(s.codec_context.width, s.codec_context.height)
        out, pos, it = [], None, None
        for i in uniform(n, t):
            target = i / fps
            if pos is None or target - pos > gop_s or target < pos:
                c.seek(int(target / tb), stream=s, backward=True)
                it = c.decode(s)
            for f in it:
                pos = f.pts * tb
                if round(pos * fps) >= i:
                    break
            img = f.reformat(width=sw, height=sh, format='rgb24',
                             interpolation='BILINEAR').to_ndarray()
            out.append(img[y0:y0 + SIZE, x0:x0 + SIZE].transpose(2, 0, 1))
    return np.stack(out)


def read_torchcodec(args):
    path, t, (w, h) = args
    sw, sh, x0, y0 = crop_box(w, h)
    dec = VideoDecoder(path, seek_mode='exact', num_ffmpeg_threads=1, transforms=[Resize((sh, sw))])
    frames = dec.get_frames_at(uniform(dec.metadata.num_frames, t)).data.numpy()  # [T, 3, sh, sw]
    return np.ascontiguousarray(frames[:, :, y0:y0 + SIZE, x0:x0 + SIZE])


def read_decord(args):
    path, t, (w, h) = args
    sw, sh, x0, y0 = crop_box(w, h)
    vr = decord.VideoReader(path, ctx=decord.cpu(0), width=sw, height=sh, num_threads=1)
    frames = vr.get_batch(uniform(len(vr), t)).asnumpy()  # [T, sh, sw, 3]
    return np.ascontiguousarray(frames[:, y0:y0 + SIZE, x0:x0 + SIZE].transpose(0, 3, 1, 2))


PEERS = [('opencv', read_opencv), ('pyav', read_pyav), ('torchcodec', read_torchcodec), ('decord', read_decord)]


def time_peer(fn, paths, t, pool, dims):
    t0 = time.perf_counter()
    clips = pool.map(fn, [(p, t, dims) if fn in (read_torchcodec, read_decord) else (p, t) for p in paths],
                     chunksize=1)
    return len(paths) / (time.perf_counter() - t0), clips


def time_kinema(exe, listfile, t, dump=None):
    cmd = [exe, 'read', listfile, 'frames=%d' % t, 'workers=2', 'size=%d' % SIZE]
    if dump:
        cmd.append('dump=' + dump)
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return res['clips_per_s']


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='build')
    ap.add_argument('--videos', type=int, default=8)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--work', default=os.path.join(tempfile.gettempdir(), 'kinema_bench_loader'))
    ap.add_argument('--res', nargs='+', default=['224p', '480p'], choices=['224p', '480p'])
    ap.add_argument('--gop', nargs='+', type=int, default=[1, 10], choices=[1, 10])
    ap.add_argument('--frames', nargs='+', type=int, default=[8, 16])
    a = ap.parse_args()
    exe = os.path.join(a.build, 'kinema_bench_loader')
    rows = []
    pool = mp.Pool(2)
    for (w, h, res) in [(398, 224, '224p'), (854, 480, '480p')]:
        if res not in a.res:
            continue
        for gop in a.gop:
            d = os.path.join(a.work, '%s_gop%d' % (res, gop))
            if not os.path.exists(os.path.join(d, 'train.csv')):
                subprocess.run([exe, 'synth', d, 'num_train=%d' % a.videos, 'num_test=0',
                                'width=%d' % w, 'height=%d' % h, 'fps=25', 'min_duration_s=10',
                                'max_duration_s=10', 'gop_s=%d' % gop, 'region_frames=0',
                                'threads=2'], check=True, capture_output=True)
            vdir = os.path.join(d, 'videos', 'train')
            paths = sorted(os.path.join(vdir, f) for f in os.listdir(vdir))
            listfile = os.path.join(d, 'list.txt')
            with open(listfile, 'w') as f:
                f.write('\n'.join(paths) + '\n')
            for t in a.frames:
                dump = os.path.join(d, 'kinema_T%d.raw' % t)
                times = {name: [] for name in ['kinema'] + [p[0] for p in PEERS]}
                clips = {}
                for r in range(a.runs):
                    times['kinema'].append(time_kinema(exe, listfile, t, dump if r == 0 else None))
                    for name, fn in PEERS:
                        cps, clips[name] = time_peer(fn, paths, t, pool, (w, h))
                        times[name].append(cps)
                ours = np.fromfile(dump, np.uint8).reshape(len(paths), t, 3, SIZE, SIZE).astype(int)
                diff = {name: int(np.abs(ours - np.stack(clips[name])).max()) for name, _ in PEERS}
                med = {name: statistics.median(v) for name, v in times.items()}
                best = max(med[name] for name, _ in PEERS)
                rows.append((res, gop, t, med, med['kinema'] / best, diff))
                print('%s gop %2ds T=%2d  ' % (res, gop, t) +
                      '  '.join('%s %.1f' % (k, v) for k, v in med.items()) +
                      '  x%.2f  maxdiff ' % rows[-1][4] + ' '.join('%s %d' % kv for kv in diff.items()),
                      file=sys.stderr, flush=True)
    pool.close()
    names = [p[0] for p in PEERS]
    label = {'opencv': 'OpenCV', 'pyav': 'PyAV', 'torchcodec': 'torchcodec', 'decord': 'decord'}
    print('| video | GOP | T | kinema clips/s | ' + ' | '.join(label[n] + ' clips/s' for n in names) +
          ' | kinema / fastest peer | max abs diff vs ' + ' / '.join(label[n] for n in names) + ' |')
    print('|---|---|---|---|' + '---|' * len(names) + '---|---|')
    for res, gop, t, med, ratio, diff in rows:
        print('| %s | %d s | %d | %.1f | ' % (res, gop, t, med['kinema']) +
              ' | '.join('%.1f' % med[n] for n in names) + ' | %.2fx | ' % ratio +
              ' / '.join(str(diff[n]) for n in names) + ' |')


if __name__ == '__main__':
    main()
