#!/usr/bin/env python3
"""PyTorch DataLoader reference for convkit's image pipeline: decode + resize on the fly.

usage: torch_dataloader_reference.py [--data DIR] [--workers 2] [--batch 32] [--train]
                                     [--threads T] [--epochs 1] [--seed 1] [--max-batches N]

A torch Dataset over DIR (default $CONVKIT_DATA/cats_vs_dogs/train): class sub-folders,
labels by sorted folder name, files sorted within each, every item decoded with PIL,
converted to RGB and resized to 180x180 bilinear (as torch_reference.py's load_folder), as
a uint8 3x180x180 tensor and a float label. DataLoader(batch_size=32, shuffle=True,
num_workers=--workers) iterated over full epochs: data only, or with --train the training
step of the chapter's small_convnet (Rescaling 1/255 first, BCE with logits, RMSprop with
Keras' defaults lr 1e-3, rho 0.9, eps 1e-7) on every batch in the main process.

The workers are started by the DataLoader the way PyTorch users get them on Linux (fork,
not persistent), so every epoch's time includes starting them; first_batch_seconds is the
time from creating the iterator to the first batch of epoch 1.

Reported, as one JSON line:
  images_per_second   images / seconds over all epochs
  peak memory, two ways:
    peak_rss_main_mib            ru_maxrss of the main process (RUSAGE_SELF)
    peak_rss_children_mib        ru_maxrss of RUSAGE_CHILDREN: the largest single finished
                                 child (Linux reports the max, not the sum); something at
                                 `import torch` already leaves a ~430 MiB child here, shown
                                 as peak_rss_children_before_loader_mib: equal values mean
                                 the field says nothing about the workers
    peak_rss_sum_mib             the peak over time of the summed VmRSS of the main process
                                 and all its descendants, sampled from /proc every 20 ms by
                                 a thread; counts pages shared after fork once per process,
                                 so it overstates the real footprint
    peak_pss_sum_mib             the same with Pss from /proc/PID/smaps_rollup (shared pages
                                 divided among their sharers): the better total
"""
import argparse, json, os, resource, sys, threading, time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


class Rescaling(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


def small_convnet():  # torch_reference.py's, with Keras' Rescaling(1/255) in front
    layers, c = [Rescaling(1.0 / 255)], 3
    for i, f in enumerate([32, 64, 128, 256, 256]):
        layers += [nn.Conv2d(c, f, 3), nn.ReLU()]
        if i < 4:
            layers.append(nn.MaxPool2d(2))
        c = f
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(7 * 7 * 256, 1))


class ImageFolder(Dataset):
    def __init__(self, root, size=180):
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        self.items = [(os.path.join(root, c, f), float(label)) for label, c in enumerate(classes)
                      for f in sorted(os.listdir(os.path.join(root, c)))]
        self.size = size

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image
        path, label = self.items[i]
        img = Image.open(path).convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(self.size, self.size, 3)
        return x.permute(2, 0, 1).contiguous(), torch.tensor([label])


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def field_kb(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler(threading.Thread):
    def __init__(self, interval=0.02):
        super().__init__(daemon=True)
        self.interval, self.stop, self.peak_rss, self.peak_pss, self.max_procs = interval, threading.Event(), 0, 0, 0

    def run(self):
        me = os.getpid()
        while not self.stop.is_set():
            pids = descendants(me)
            rss = sum(field_kb(f"/proc/{p}/status", "VmRSS:") for p in pids)
            pss = sum(field_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.max_procs = max(self.max_procs, len(pids))
            self.stop.wait(self.interval)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.environ.get("CONVKIT_DATA", "/work/shared/data"), "cats_vs_dogs", "train"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train", action="store_true", help="run small_convnet's training step on every batch")
    ap.add_argument("--threads", type=int, help="intra-op threads of the main process (default $OMP_NUM_THREADS or torch's)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-batches", type=int, help="stop after N batches (a short run; the workers are then shut down "
                    "by the iterator's deletion, outside the timed part)")
    a = ap.parse_args()
    threads = a.threads or int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))
    torch.set_num_threads(threads)
    torch.manual_seed(a.seed)

    ds = ImageFolder(a.data)
    loader = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers)
    if a.train:
        model = small_convnet()
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    sampler = MemorySampler()
    sampler.start()
    n, first = 0, None
    t0 = time.perf_counter()
    batches = 0
    for epoch in range(a.epochs):
        it = iter(loader)
        for xb, yb in it:
            if first is None:
                first = time.perf_counter() - t0
            if a.train:
                opt.zero_grad()
                F.binary_cross_entropy_with_logits(model(xb.float()), yb).backward()
                opt.step()
            n += len(xb)
            batches += 1
            if a.max_batches is not None and batches >= a.max_batches:
                break
        if a.max_batches is not None and batches >= a.max_batches:
            break
    seconds = time.perf_counter() - t0
    del it  # a stopped iterator shuts its workers down here (a finished one already did)
    seconds = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    print(json.dumps({
        "engine": f"pytorch {torch.__version__} DataLoader", "workload": "dataloader_train" if a.train else "dataloader",
        "data": a.data, "workers": a.workers, "threads": threads, "batch": a.batch, "epochs": a.epochs,
        "images": n, "max_batches": a.max_batches, "seconds": round(seconds, 2), "images_per_second": round(n / seconds, 1),
        "first_batch_seconds": round(first, 3),
        "peak_rss_main_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_children_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "peak_rss_children_before_loader_mib": round(children_before, 1),
        "peak_rss_sum_mib": round(sampler.peak_rss / 1024, 1), "peak_pss_sum_mib": round(sampler.peak_pss / 1024, 1),
        "memory_sampled": "VmRSS and Pss of main + descendants from /proc every 20 ms",
        "max_processes_seen": sampler.max_procs}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
