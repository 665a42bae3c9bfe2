#!/usr/bin/env python3
"""convkit's `--recipe fast` for the chapter's from-scratch cats-vs-dogs convnets, written in
plain PyTorch, to compare time to a validation accuracy with convkit on the same machine.

usage: fast_recipe_torch.py --data DIR [--model small-convnet|mini-xception] [--augment]
         [--dropout R] [--epochs N] [--lr LR] [--weight-decay WD] [--label-smoothing S]
         [--ema D] [--batch-size 32] [--image-size 180] [--seed 42] [--threads N]
         [--channels-last] [--bf16] [--target 0.85] [--limit N]

The recipe, as convkit's sources have it (workflows/presets/recipe.rs and train/):
- models: ../shared/bench/torch_reference.py's small convnet (rescaling 1/255, five 3x3
  convolutions with ReLU and max pooling, flatten, [Dropout(--dropout)], Dense(1)), or
  convkit's mini-Xception (models/mini_xception.rs: Conv2D(32, 5, valid, no bias), five
  residual blocks [BN, ReLU, SeparableConv2D, BN, ReLU, SeparableConv2D, MaxPool(3, 2,
  same)] + Conv2D(1x1, stride 2, no bias) projection, filters 32..512, BN momentum 0.9 in
  Keras' terms (PyTorch's 0.1) and epsilon 1e-3, global average pooling, Dropout(0.5 unless
  --dropout), Dense(1)); Keras' initialisation (Glorot uniform kernels, zero biases);
- --augment (train only): RandomFlip("horizontal"), RandomRotation(0.1), RandomZoom(0.2)
  with Keras' reflect fill and bilinear sampling, one warp per layer, drawn per image as
  convkit's augment/ layers draw them; images decoded with PIL and stretched to
  --image-size by bilinear interpolation without antialiasing (Keras' and convkit's
  default);
- AdamW (betas 0.9, 0.999, eps 1e-7), decoupled weight decay on tensors of 2 or more
  dimensions only; a one-cycle schedule per step (OneCycleLR, pct_start 0.25, cos,
  div_factor 25, final_div_factor 1e5, no momentum cycling);
- binary cross-entropy on logits, training targets smoothed (y (1 - s) + s / 2), the
  validation loss unsmoothed;
- an exponential moving average of every floating weight and batch-norm statistic,
  d = min(decay, (1 + n) / (10 + n)) after n updates, validated in place of the raw weights;
- batches of 32, a fresh seeded order every epoch, the last batch smaller.
Defaults per row as convkit's fast recipe sets them: mini-xception 60 epochs, lr 3e-3;
small convnet with --augment 40 epochs, lr 1e-3; small convnet without 12 epochs, lr 1e-3
and no average; all weight decay 0.05, label smoothing 0.1, EMA 0.998. Flags override.

Prints JSON lines: the settings; one line per epoch (epoch, loss, accuracy, val_loss,
val_accuracy, learning_rate at the epoch's first step, seconds of its training steps,
wall_seconds since the script started, data loading included); then the epoch of lowest
validation loss and the first epoch (and wall time) at which validation accuracy reached
--target.
"""
import argparse, json, math, os, sys, time

T0 = time.perf_counter()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from shared_reference import ref  # noqa: E402


# --- data -------------------------------------------------------------------------------

def load_folder(root, size, limit=None):
    """Class sub-folders of JPEGs as (uint8 (N, 3, size, size), float (N, 1) labels): decoded
    by PIL and stretched by plain bilinear interpolation (no antialiasing), as convkit and
    Keras' image_dataset_from_directory resize (torch_reference.load_folder's PIL BILINEAR
    antialiases when it shrinks). `limit`: the first N files of each class."""
    from PIL import Image
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    xs, ys = [], []
    for label, c in enumerate(classes):
        files = sorted(os.listdir(os.path.join(root, c)))[:limit]
        for f in files:
            img = Image.open(os.path.join(root, c, f)).convert("RGB")
            x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
            x = x.view(img.height, img.width, 3).permute(2, 0, 1).unsqueeze(0)
            xs.append(F.interpolate(x, size=(size, size), mode="bilinear",
                                    align_corners=False, antialias=False)[0])
            ys.append(label)
    return torch.stack(xs).contiguous(), torch.tensor(ys, dtype=torch.float32).unsqueeze(1)


# --- augmentation (convkit's augment/, Keras' layers) ---------------------------------------

def warp(xs, m):
    """Each image of float xs (B, C, H, W) sampled at m[b] (B, 2, 3) @ (x, y, 1) for every
    output pixel (x, y) (pixel centres at integers), bilinear, reflected about the edges."""
    b, _, h, w = xs.shape
    cols = torch.arange(w, dtype=xs.dtype).view(1, w).expand(h, w)
    rows = torch.arange(h, dtype=xs.dtype).view(h, 1).expand(h, w)
    pixels = torch.stack([cols, rows, torch.ones(h, w, dtype=xs.dtype)], -1).view(1, h * w, 3)
    points = pixels.matmul(m.to(xs.dtype).transpose(1, 2))
    size = torch.tensor([w, h], dtype=xs.dtype)
    grid = ((points * 2.0 + 1.0) / size - 1.0).view(b, h, w, 2)
    return F.grid_sample(xs, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def augment(xs, rotation=0.1, zoom=0.2):
    """RandomFlip("horizontal"), RandomRotation(rotation), RandomZoom(zoom), in that order,
    with the draws (global generator) in convkit's order and formulas."""
    b, _, h, w = xs.shape
    flip = torch.rand(b, 1, 1, 1) < 0.5
    xs = torch.where(flip, xs.flip(3), xs)
    angle = (torch.rand(b) * (2 * rotation) - rotation) * (2.0 * math.pi)
    cos, sin = angle.cos(), angle.sin()
    w1, h1 = float(w - 1), float(h - 1)
    dx = (w1 - (cos * w1 - sin * h1)) / 2.0
    dy = (h1 - (sin * w1 + cos * h1)) / 2.0
    xs = warp(xs, torch.stack([cos, -sin, dx, sin, cos, dy], 1).view(b, 2, 3))
    z = torch.rand(b) * (2 * zoom) + (1.0 - zoom)
    dx, dy = (1.0 - z) * (w1 / 2.0), (1.0 - z) * (h1 / 2.0)
    zeros = torch.zeros_like(z)
    return warp(xs, torch.stack([z, zeros, dx, zeros, z, dy], 1).view(b, 2, 3))


# --- models ------------------------------------------------------------------------------

def small_convnet(size, dropout):
    """torch_reference's small convnet (input already rescaled to [0, 1]), its dense layer
    sized for `size`, with Dropout(dropout) after the flatten when dropout is set."""
    layers = list(ref.small_convnet())
    features = nn.Sequential(*layers[:-2])
    with torch.no_grad():
        n = features(torch.zeros(1, 3, size, size)).numel()
    head = [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(features, nn.Flatten(), *head, nn.Linear(n, 1))


class MaxPoolSame(nn.Module):
    """MaxPooling2D(3, strides=2, padding="same") as TensorFlow pads: ceil(n / 2) outputs,
    the odd extra padded pixel after the input (PyTorch's padding=1 pads both sides)."""

    def forward(self, x):
        def pads(n):
            total = max((-(-n // 2) - 1) * 2 + 3 - n, 0)
            return total // 2, total - total // 2
        (top, bottom), (left, right) = pads(x.shape[-2]), pads(x.shape[-1])
        return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=float("-inf")), 3, 2)


def separable(cin, cout):
    """SeparableConv2D(cout, 3, padding="same", use_bias=False)."""
    return nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
                         nn.Conv2d(cin, cout, 1, bias=False))


def batch_norm(c):
    """Keras BatchNormalization(momentum=0.9, epsilon=1e-3) as convkit's mini-Xception has
    it: PyTorch's momentum is the weight of the new batch."""
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.1)


class XceptionBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.body = nn.Sequential(batch_norm(cin), nn.ReLU(), separable(cin, cout),
                                  batch_norm(cout), nn.ReLU(), separable(cout, cout),
                                  MaxPoolSame())
        self.projection = nn.Conv2d(cin, cout, 1, stride=2, bias=False)

    def forward(self, x):
        return self.body(x) + self.projection(x)


def mini_xception(dropout):
    layers, c = [nn.Conv2d(3, 32, 5, bias=False)], 32
    for f in [32, 64, 128, 256, 512]:
        layers.append(XceptionBlock(c, f))
        c = f
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.5 if dropout is None else dropout), nn.Linear(c, 1))


def keras_init(model):
    """Glorot uniform kernels and zero biases, as Keras and convkit start (the Glorot limit
    of a depthwise kernel, sqrt(6 / (9 C + 9)), is the same with either library's fans)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# --- fitting -----------------------------------------------------------------------------

def fast_settings(model, augmented):
    """convkit's fast_settings for a from-scratch model: epochs, lr, weight decay, label
    smoothing, EMA decay (None: no average)."""
    if model == "mini-xception":
        return 60, 3e-3, 0.05, 0.1, 0.998
    if augmented:
        return 40, 1e-3, 0.05, 0.1, 0.998
    return 12, 1e-3, 0.05, 0.1, None


def one_cycle(step, total, warmup=0.25, div=25.0, final_div=1e5):
    """convkit's Schedule::OneCycle factor (train/schedule.rs), equal to OneCycleLR's
    rate / max_lr; used only where OneCycleLR cannot run (4 steps or fewer)."""
    def between(start, end, progress):
        return end + (start - end) * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0))) / 2
    step, first = min(step, total - 1), 1.0 / div
    peak = max(warmup * total - 1, 0.0)
    if step <= peak and peak > 0:
        return between(first, 1.0, step / peak)
    return between(1.0, first / final_div, (step - peak) / max(total - 1 - peak, 1.0))


def epoch_seed(seed, epoch):
    """convkit's seed of the global generator for an epoch (SplitMix64's finaliser)."""
    mask = (1 << 64) - 1
    z = (seed ^ (epoch * 0x9E3779B97F4A7C15)) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z = z ^ (z >> 31)
    return (z - (1 << 64) if z >> 63 else z) >> 1


class Ema:
    """Moving average of every floating parameter and buffer (batch-norm statistics)."""

    def __init__(self, model, decay):
        self.decay, self.updates = decay, 0
        self.tensors = [t for t in list(model.parameters()) + list(model.buffers())
                        if t.is_floating_point()]
        self.averages = [t.detach().clone() for t in self.tensors]

    @torch.no_grad()
    def update(self):
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.averages, [t.detach() for t in self.tensors], 1.0 - d)
        self.updates += 1

    @torch.no_grad()
    def swap(self):
        """Exchanges the model's weights and the averages (call twice to undo)."""
        for t, a in zip(self.tensors, self.averages):
            held = t.detach().clone()
            t.copy_(a)
            a.copy_(held)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a folder with train/ and validation/ class folders")
    ap.add_argument("--model", choices=["small-convnet", "mini-xception"], default="small-convnet")
    ap.add_argument("--augment", action="store_true", help="the chapter's flip, rotation and zoom")
    ap.add_argument("--dropout", type=float, help="before the dense layer (mini-xception: 0.5 unless set)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--lr", type=float, help="the one-cycle peak")
    ap.add_argument("--weight-decay", type=float)
    ap.add_argument("--label-smoothing", type=float)
    ap.add_argument("--ema", type=float, help="decay of the weight average (0: none)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=180)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--channels-last", action="store_true", help="channels_last model and inputs")
    ap.add_argument("--bf16", action="store_true", help="forward under torch.autocast(cpu, bfloat16)")
    ap.add_argument("--target", type=float, default=0.85, help="validation accuracy to time")
    ap.add_argument("--limit", type=int, help="only the first N images of each class of each split")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    ref.CHANNELS_LAST, ref.BF16 = a.channels_last, a.bf16
    epochs, lr, wd, smoothing, ema_decay = fast_settings(a.model, a.augment)
    epochs = a.epochs if a.epochs is not None else epochs
    lr = a.lr if a.lr is not None else lr
    wd = a.weight_decay if a.weight_decay is not None else wd
    smoothing = a.label_smoothing if a.label_smoothing is not None else smoothing
    if a.ema is not None:
        ema_decay = a.ema or None

    x, y = load_folder(os.path.join(a.data, "train"), a.image_size, a.limit)
    xv, yv = load_folder(os.path.join(a.data, "validation"), a.image_size, a.limit)
    load_s = time.perf_counter() - T0

    torch.manual_seed(a.seed)
    model = small_convnet(a.image_size, a.dropout) if a.model == "small-convnet" else mini_xception(a.dropout)
    keras_init(model)
    model = ref.fmt(model)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.999), eps=1e-7)
    steps = -(-len(x) // a.batch_size)
    total = epochs * steps
    if 0.25 * total - 1 > 0:
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=total, pct_start=0.25, anneal_strategy="cos",
            div_factor=25.0, final_div_factor=1e5, cycle_momentum=False)
    else:  # OneCycleLR divides by zero on runs of 4 steps or fewer; convkit's formula does not
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: one_cycle(s, total))
    ema = Ema(model, ema_decay) if ema_decay else None
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"engine": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(),
                      "model": a.model, "params": n_params, "augment": a.augment,
                      "dropout": a.dropout, "epochs": epochs, "learning_rate": lr,
                      "weight_decay": wd, "label_smoothing": smoothing, "ema": ema_decay,
                      "batch_size": a.batch_size, "image_size": a.image_size, "seed": a.seed,
                      "channels_last": a.channels_last, "bf16": a.bf16, "train_images": len(x),
                      "validation_images": len(xv), "load_seconds": round(load_s, 1)}), flush=True)

    history, reached = [], None
    model.train()
    for epoch in range(1, epochs + 1):
        torch.manual_seed(epoch_seed(a.seed, epoch))
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(a.seed + epoch))
        epoch_lr = opt.param_groups[0]["lr"]
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        start = time.perf_counter()
        for i in range(0, len(x), a.batch_size):
            idx = order[i:i + a.batch_size]
            xb, yb = x[idx].float(), y[idx]
            if a.augment:
                xb = augment(xb)
            xb = ref.fmt(xb.div(255.0))
            with ref.autocast():
                logits = model(xb)
            logits = logits.float()
            targets = yb * (1.0 - smoothing) + 0.5 * smoothing if smoothing else yb
            loss = F.binary_cross_entropy_with_logits(logits, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema:
                ema.update()
            with torch.no_grad():
                loss_sum += loss.detach() * len(idx)
                correct += ((logits.detach() > 0).float() == yb).sum()
        seconds = time.perf_counter() - start
        if ema:
            ema.swap()
        val_loss, val_acc = ref.binary_eval(model, xv, yv)
        if ema:
            ema.swap()
        record = {"epoch": epoch, "loss": round(loss_sum.item() / len(x), 4),
                  "accuracy": round(correct.item() / len(x), 4), "val_loss": round(val_loss, 4),
                  "val_accuracy": round(val_acc, 4), "learning_rate": epoch_lr,
                  "seconds": round(seconds, 2), "wall_seconds": round(time.perf_counter() - T0, 1)}
        history.append(record)
        print(json.dumps(record), flush=True)
        if reached is None and val_acc >= a.target:
            reached = record
    best = min(history, key=lambda r: r["val_loss"])
    print(json.dumps({"best_epoch": best["epoch"], "best_val_loss": best["val_loss"],
                      "best_val_accuracy": best["val_accuracy"], "target": a.target,
                      "target_epoch": reached and reached["epoch"],
                      "target_wall_seconds": reached and reached["wall_seconds"],
                      "target_train_seconds": reached and round(sum(
                          r["seconds"] for r in history[:reached["epoch"]]), 1),
                      "train_seconds": round(sum(r["seconds"] for r in history), 1),
                      "wall_seconds": round(time.perf_counter() - T0, 1)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
