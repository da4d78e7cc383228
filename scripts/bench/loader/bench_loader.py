#!/usr/bin/python3
"""Loader benchmark: kinema's threaded loader against OpenCV VideoCapture and PyAV.

  /usr/bin/python3 scripts/bench/loader/bench_loader.py [--build build] [--videos 8] [--runs 3]

Makes synthetic H.264 videos with `kinema_bench_loader synth` (224p = 398x224
and 480p = 854x480, 25 fps, 10 s, keyframes every 1 s or 10 s), then for
T = 8 and 16 uniformly sampled frames (middle of T equal segments), resized
(shorter side 224, bilinear) and centre-cropped to 224x224 RGB, measures clips/s:
  kinema   kinema_bench_loader read: Loader, 2 worker threads
  opencv   cv2.VideoCapture, CAP_PROP_POS_FRAMES seek per frame, 2 processes
  pyav     av, seek to each target (backward to its keyframe) then decode up to
           it, or decode straight on when the target is near; 2 processes
Median of --runs runs. "same frames": max |kinema - pyav| over every pixel of
every clip (both resize with swscale bilinear), and the same for opencv.
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
import numpy as np

SIZE = 224
cv2.setNumThreads(1)


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


def time_peer(fn, paths, t, pool):
    t0 = time.perf_counter()
    clips = pool.map(fn, [(p, t) for p in paths], chunksize=1)
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
    a = ap.parse_args()
    exe = os.path.join(a.build, 'kinema_bench_loader')
    rows = []
    pool = mp.Pool(2)
    for (w, h, res) in [(398, 224, '224p'), (854, 480, '480p')]:
        for gop in (1, 10):
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
            for t in (8, 16):
                dump = os.path.join(d, 'kinema_T%d.raw' % t)
                k, o, p = [], [], []
                for r in range(a.runs):
                    k.append(time_kinema(exe, listfile, t, dump if r == 0 else None))
                    cps, cv_clips = time_peer(read_opencv, paths, t, pool)
                    o.append(cps)
                    cps, av_clips = time_peer(read_pyav, paths, t, pool)
                    p.append(cps)
                ours = np.fromfile(dump, np.uint8).reshape(len(paths), t, 3, SIZE, SIZE)
                theirs = np.stack(av_clips)
                diff_av = int(np.abs(ours.astype(int) - theirs).max())
                diff_cv = int(np.abs(ours.astype(int) - np.stack(cv_clips)).max())
                km, om, pm = (statistics.median(x) for x in (k, o, p))
                rows.append((res, gop, t, km, om, pm, km / max(om, pm), diff_av, diff_cv))
                print('%s gop %2ds T=%2d  kinema %7.1f  opencv %7.1f  pyav %7.1f  x%.2f  '
                      'maxdiff pyav %d opencv %d' % rows[-1], file=sys.stderr, flush=True)
    pool.close()
    print('| video | GOP | T | kinema clips/s | OpenCV clips/s | PyAV clips/s | kinema / faster peer '
          '| max abs diff vs PyAV | vs OpenCV |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        print('| %s | %d s | %d | %.1f | %.1f | %.1f | %.2fx | %d | %d |' % r)


if __name__ == '__main__':
    main()
