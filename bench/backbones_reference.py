"""PyTorch CPU reference for convkit's backbone workloads (workload c of convkit's bench for
MobileNetV2 and EfficientNet-Lite0, and workload e; VGG16 is workload c of
shared/bench/torch_reference.py).

The two networks are written out here with torch.nn (torchvision is not needed), with the
same layers as convkit's: batch norm in eval mode, ReLU6, TF "SAME" padding for
EfficientNet-Lite0. Random weights.

usage: python bench/backbones_reference.py WORKLOAD [--seconds 10] [--channels-last] [--bf16]
  mobilenet_v2, efficientnet_lite0: inference of the base, batch 16, 180x180, under
      torch.inference_mode()
  e: a training step of EfficientNet-Lite0 frozen (eval mode, no gradients) under the
      chapter's augmentation (random flip, rotation 0.1 of a turn, zoom 0.2: one
      affine_grid + grid_sample per batch, reflected borders) and a pooled head (global
      average pooling, dropout 0.5, dense 1), RMSprop with Keras' defaults, binary
      crossentropy; batch 32, 224x224
--channels-last and --bf16 mean what they mean in torch_reference.py: the model and its
inputs in torch.channels_last, and the forward pass under
torch.autocast("cpu", dtype=torch.bfloat16).
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBn(nn.Sequential):
    def __init__(self, cin, cout, k, s, groups=1, relu=True, tf_same=False, eps=1e-5):
        super().__init__(nn.Conv2d(cin, cout, k, s, 0 if tf_same else (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout, eps=eps), *( [nn.ReLU6()] if relu else [] ))
        self.k, self.s, self.tf_same = k, s, tf_same

    def forward(self, x):
        if self.tf_same:
            h, w = x.shape[-2:]
            ph = max((math.ceil(h / self.s) - 1) * self.s + self.k - h, 0)
            pw = max((math.ceil(w / self.s) - 1) * self.s + self.k - w, 0)
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


class Inverted(nn.Module):
    def __init__(self, cin, cout, k, s, t, tf_same, eps):
        super().__init__()
        hidden = cin * t
        layers = [] if t == 1 else [ConvBn(cin, hidden, 1, 1, tf_same=tf_same, eps=eps)]
        layers += [ConvBn(hidden, hidden, k, s, groups=hidden, tf_same=tf_same, eps=eps),
                   ConvBn(hidden, cout, 1, 1, relu=False, tf_same=tf_same, eps=eps)]
        self.body, self.residual = nn.Sequential(*layers), s == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


def mobilenet_v2():
    layers, cin = [ConvBn(3, 32, 3, 2)], 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            layers.append(Inverted(cin, c, 3, s if i == 0 else 1, t, False, 1e-5))
            cin = c
    layers.append(ConvBn(cin, 1280, 1, 1))
    return nn.Sequential(*layers)


def efficientnet_lite0():
    layers, cin = [ConvBn(3, 32, 3, 2, tf_same=True, eps=1e-3)], 32
    for k, s, e, c, n in [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]:
        for i in range(n):
            layers.append(Inverted(cin, c, k, s if i == 0 else 1, e, True, 1e-3))
            cin = c
    layers.append(ConvBn(cin, 1280, 1, 1, tf_same=True, eps=1e-3))
    return nn.Sequential(*layers)


def augment(x):
    """The chapter's augmentation on a float batch: flip, rotation, zoom in one warp."""
    b = x.shape[0]
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
    angle = (torch.rand(b) * 2 - 1) * 0.1 * 2 * math.pi
    zoom = 1 + (torch.rand(b) * 2 - 1) * 0.2
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, torch.zeros(b)], 1),
                         torch.stack([sin * flip, cos, torch.zeros(b)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="reflection", align_corners=False)


class FrozenTransfer(nn.Module):
    def __init__(self):
        super().__init__()
        self.base = efficientnet_lite0().eval().requires_grad_(False)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(1280, 1))

    def forward(self, images):
        x = augment(images.float())
        return self.head(self.base((x - 127.0) / 128.0))


def rate(step, batch, seconds, warmup=2):
    for _ in range(warmup):
        step()
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["mobilenet_v2", "efficientnet_lite0", "e"])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(1)
    fmt = (lambda t: t.to(memory_format=torch.channels_last)) if a.channels_last else (lambda t: t)
    autocast = lambda: torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=a.bf16)
    if a.workload == "e":
        model = fmt(FrozenTransfer())
        model.head.train()
        opt = torch.optim.RMSprop(model.head.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
        x = fmt(torch.randint(0, 256, (32, 3, 224, 224), dtype=torch.uint8))
        y = torch.randint(0, 2, (32, 1)).float()

        def step():
            opt.zero_grad()
            with autocast():
                out = model(x)
            F.binary_cross_entropy_with_logits(out.float(), y).backward()
            opt.step()
        images_per_s = rate(step, 32, a.seconds)
        workload = "e"
    else:
        m = fmt((mobilenet_v2 if a.workload == "mobilenet_v2" else efficientnet_lite0)().eval())
        x = fmt(torch.rand(16, 3, 180, 180))
        with torch.inference_mode(), autocast():
            assert m(x).shape == (16, 1280, 6, 6)
            images_per_s = rate(lambda: m(x), 16, a.seconds, warmup=1)
        workload = f"c_{a.workload}"
    print(json.dumps({"engine": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(),
                      "workload": workload, "channels_last": a.channels_last, "bf16": a.bf16,
                      "images_per_s": round(images_per_s, 1)}))


if __name__ == "__main__":
    main()
