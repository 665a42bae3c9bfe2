"""PyTorch CPU reference for convkit's backbone inference (workload c of convkit's bench for
MobileNetV2 and EfficientNet-Lite0; VGG16 is workload c of shared/bench/torch_reference.py).

The two networks are written out here with torch.nn (torchvision is not needed), with the
same layers as convkit's: batch norm in eval mode, ReLU6, TF "SAME" padding for
EfficientNet-Lite0. Random weights; batch 16, 180x180, under torch.inference_mode().

usage: python bench/backbones_reference.py mobilenet_v2|efficientnet_lite0 [--seconds 10]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("backbone", choices=["mobilenet_v2", "efficientnet_lite0"])
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    m = (mobilenet_v2 if a.backbone == "mobilenet_v2" else efficientnet_lite0)().eval()
    x = torch.rand(16, 3, 180, 180)
    with torch.inference_mode():
        assert m(x).shape == (16, 1280, 6, 6)
        m(x)
        n, t0 = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - t0 < a.seconds:
            m(x)
            n += 1
        rate = n * 16 / (time.perf_counter() - t0)
    print(json.dumps({"engine": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(),
                      "workload": f"c_{a.backbone}", "images_per_s": round(rate, 1)}))


if __name__ == "__main__":
    main()
