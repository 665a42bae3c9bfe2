#!/usr/bin/env python3
"""PyTorch DistributedDataParallel (CPU, Gloo) reference for convkit's data-parallel training.

usage:
  torchrun --standalone --nproc-per-node=N bench/torch_ddp_reference.py WORKLOAD [options]
  python bench/torch_ddp_reference.py WORKLOAD [options]        (one process, world size 1)

  b      the chapter's cats-vs-dogs convnet (small_convnet, Rescaling 1/255 as its first
         layer), 180x180x3, per-process batch 32, BCE with logits: one epoch over the 2000
         training JPEGs of --data (decoded once into memory by every process with PIL and
         resized to 180x180 bilinear, as torch_reference.py's load_folder does)
  mnist  the chapter's MNIST convnet, per-process batch 64, cross-entropy: one epoch over
         the first 54,000 training images (Keras' validation_split 0.1, as `convkit mnist`
         trains on; --train-count 0 for all 60,000)

Both: RMSprop with Keras' defaults (lr 1e-3, rho 0.9, eps 1e-7, no momentum), the samples
sharded with DistributedSampler(shuffle=True, seed=--seed) (padding to a multiple of the
world size as its default drop_last=False does), the model wrapped in
DistributedDataParallel even at world size 1 (so `python script` = `torchrun
--nproc-per-node=1 script`). The batches are gathered from the in-memory tensors by the
sampler's indices (no DataLoader: the decode cost is outside the timed epoch; see
torch_dataloader_reference.py for the DataLoader side).

Threads: --threads, else $OMP_NUM_THREADS (torchrun sets 1 when N > 1), else torch's default.

Reported, as one JSON line printed by rank 0:
  images_per_second         len(dataset) / seconds of the epoch, all processes together (the
                            epoch is timed between two barriers, so it is the slowest rank's)
  seconds                   that epoch's wall time
  steady_images_per_second  world * batch * steps / seconds of the synchronised steps of the
                            allreduce measurement below (one fixed batch, no indexing)
  allreduce_share           the share of a training step spent in *exposed* gradient allreduce,
                            measured the way PyTorch users do with DDP's no_sync(): after the
                            epoch, --share-steps steps with DDP's normal gradient allreduce and
                            the same number under model.no_sync() (no communication at all; the
                            optimizer step still runs), on the same fixed batch, in alternating
                            blocks of --share-block steps, each block between two barriers:
                                share = (t_sync - t_no_sync) / t_sync
                            This is the part of the step the communication adds after DDP's
                            overlap of the bucket allreduces with backward; 0 at world size 1 up
                            to noise (can come out slightly negative: noise).
  allreduce_busy_share      a second view: a DDP comm hook (the default allreduce-then-divide,
                            as torch.distributed.algorithms.ddp_comm_hooks.default_hooks.
                            allreduce_hook does, with timestamps) records, for each bucket, the
                            time from launching the Gloo allreduce to its future completing;
                            the union of those intervals in a step over the step's time. It
                            counts communication hidden behind backward too, so it is >= the
                            exposed share.
  peak_rss_mib              rank 0's ru_maxrss; peak_rss_mib_all_ranks: the sum over ranks.
"""
import argparse, gzip, json, os, resource, struct, sys, time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data.distributed import DistributedSampler


# --- models, copied from ../../shared/bench/torch_reference.py (small_convnet gets the
# --- Keras Rescaling(1/255) layer in front, so the input is the uint8 image as float).

class Rescaling(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


def mnist_net():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 3 * 128, 10))


def small_convnet():
    layers, c = [Rescaling(1.0 / 255)], 3
    for i, f in enumerate([32, 64, 128, 256, 256]):
        layers += [nn.Conv2d(c, f, 3), nn.ReLU()]
        if i < 4:
            layers.append(nn.MaxPool2d(2))
        c = f
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(7 * 7 * 256, 1))


def rmsprop(model, lr=1e-3):
    return torch.optim.RMSprop(model.parameters(), lr=lr, alpha=0.9, eps=1e-7)


# --- data, as torch_reference.py reads it

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = struct.unpack(">" + "I" * (magic & 0xFF), data[4:4 + 4 * (magic & 0xFF)])
    return torch.frombuffer(bytearray(data[4 + 4 * len(dims):]), dtype=torch.uint8).reshape(dims)


def load_folder(root, size=180):
    from PIL import Image
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    xs, ys = [], []
    for label, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(root, c))):
            img = Image.open(os.path.join(root, c, f)).convert("RGB").resize((size, size), Image.BILINEAR)
            xs.append(torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3))
            ys.append(label)
    return torch.stack(xs).permute(0, 3, 1, 2).contiguous(), torch.tensor(ys, dtype=torch.float32).unsqueeze(1)


# --- the allreduce comm hook with timestamps

class TimedAllreduce:
    """DDP comm hook state: the default allreduce hook (sum, then divide by the world size),
    recording (launch, completion) perf_counter times of every bucket."""

    def __init__(self):
        self.intervals = []
        self.record = False

    def hook(self, state, bucket):
        buf = bucket.buffer()
        t0 = time.perf_counter()
        fut = dist.all_reduce(buf, async_op=True).get_future()
        world = dist.get_world_size()

        def done(f):
            if self.record:
                self.intervals.append((t0, time.perf_counter()))
            return f.value()[0].div_(world)
        return fut.then(done)


def union_seconds(intervals):
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=["b", "mnist"])
    ap.add_argument("--data", default=os.environ.get("CONVKIT_DATA", "/work/shared/data"),
                    help="the folder holding mnist/ and cats_vs_dogs/ (default $CONVKIT_DATA)")
    ap.add_argument("--threads", type=int, help="intra-op threads per process (default $OMP_NUM_THREADS)")
    ap.add_argument("--batch", type=int, help="per-process batch (default: b 32, mnist 64)")
    ap.add_argument("--train-count", type=int, default=54000,
                    help="mnist: train on the first N of the 60,000 (default 54000; 0 = all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--share-steps", type=int, help="steps of each kind (sync / no_sync) for the allreduce share "
                    "(default: b 16, mnist 60; 0 skips the measurement)")
    ap.add_argument("--share-block", type=int, help="steps per alternating block (default: b 4, mnist 10)")
    a = ap.parse_args()

    threads = a.threads or int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))
    torch.set_num_threads(threads)
    if "RANK" in os.environ:  # torchrun: env:// rendezvous
        dist.init_process_group("gloo")
    else:  # one process without a launcher: a world of one on a local store
        store = dist.HashStore()
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(a.seed)

    if a.workload == "b":
        batch = a.batch or 32
        x, y = load_folder(os.path.join(a.data, "cats_vs_dogs", "train"))
        model, loss_fn = small_convnet(), F.binary_cross_entropy_with_logits
        to_input = lambda t: t.float()  # Rescaling 1/255 is the model's first layer
        share_steps, share_block = 16, 4
    else:
        batch = a.batch or 64
        root = os.path.join(a.data, "mnist")
        x = read_idx(os.path.join(root, "train-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(root, "train-labels-idx1-ubyte.gz")).long()
        if a.train_count:
            x, y = x[:a.train_count], y[:a.train_count]
        x = x.float().div_(255).unsqueeze(1)
        model, loss_fn = mnist_net(), F.cross_entropy
        to_input = lambda t: t
        share_steps, share_block = 60, 10
    share_steps = share_steps if a.share_steps is None else a.share_steps
    share_block = a.share_block or share_block

    ddp = DDP(model)  # CPU: no device_ids; parameters broadcast from rank 0 here
    timer = TimedAllreduce()
    ddp.register_comm_hook(None, timer.hook)
    opt = rmsprop(ddp)
    sampler = DistributedSampler(range(len(x)), num_replicas=world, rank=rank, shuffle=True, seed=a.seed)

    def step(xb, yb):
        opt.zero_grad()
        loss_fn(ddp(to_input(xb)), yb).backward()
        opt.step()

    # One epoch.
    sampler.set_epoch(0)
    order = torch.tensor(list(sampler))
    dist.barrier()
    t0 = time.perf_counter()
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        step(x[idx], y[idx])
    dist.barrier()
    epoch_s = time.perf_counter() - t0

    out = {"engine": f"pytorch {torch.__version__} ddp gloo", "workload": a.workload, "world_size": world,
           "threads_per_process": threads, "batch_per_process": batch, "train_count": len(x),
           "images_per_second": round(len(x) / epoch_s, 1), "seconds": round(epoch_s, 2)}

    # Allreduce share on one fixed batch: alternating blocks of synchronised steps and
    # no_sync() steps (see the docstring), each block between barriers.
    if share_steps > 0:
        xb, yb = x[order[:batch]], y[order[:batch]]
        for _ in range(2):  # warm-up of both kinds
            step(xb, yb)
            with ddp.no_sync():
                step(xb, yb)
        t_sync = t_nosync = busy = 0.0
        done = 0
        while done < share_steps:
            n = min(share_block, share_steps - done)
            for kind in ("sync", "no_sync"):
                dist.barrier()
                s = time.perf_counter()
                for _ in range(n):
                    if kind == "sync":
                        timer.intervals, timer.record = [], True
                        s1 = time.perf_counter()
                        step(xb, yb)
                        timer.record = False
                        # intervals of this step, clipped to it
                        e1 = time.perf_counter()
                        busy += union_seconds([(max(p, s1), min(q, e1)) for p, q in timer.intervals])
                    else:
                        with ddp.no_sync():
                            step(xb, yb)
                dist.barrier()
                el = time.perf_counter() - s
                if kind == "sync":
                    t_sync += el
                else:
                    t_nosync += el
            done += n
        # the slowest rank's times (rank 0 reports)
        times = torch.tensor([t_sync, t_nosync, busy], dtype=torch.float64)
        dist.all_reduce(times, op=dist.ReduceOp.MAX)
        t_sync, t_nosync, busy = times.tolist()
        out.update({"share_steps": share_steps, "share_method": "no_sync",
                    "allreduce_share": round((t_sync - t_nosync) / t_sync, 4),
                    "allreduce_busy_share": round(busy / t_sync, 4),
                    "sync_step_ms": round(1000 * t_sync / share_steps, 1),
                    "no_sync_step_ms": round(1000 * t_nosync / share_steps, 1),
                    "steady_images_per_second": round(world * batch * share_steps / t_sync, 1)})

    rss = torch.tensor([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0], dtype=torch.float64)
    out["peak_rss_mib"] = round(rss.item(), 1)
    dist.all_reduce(rss)
    out["peak_rss_mib_all_ranks"] = round(rss.item(), 1)
    if rank == 0:
        print(json.dumps(out), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
