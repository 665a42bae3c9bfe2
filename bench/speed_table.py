#!/usr/bin/env python3
"""Turns the results of bench/speed_vs_pytorch.sh into the speed table of BENCHMARKS.md.

usage: python bench/speed_table.py RESULTS.jsonl

For each workload: the median images/s over the rounds of convkit and of each PyTorch
variant, in fp32 and in bf16, the ratio of convkit to PyTorch's fastest variant of the same
precision, and convkit's achieved GFLOP/s as a fraction of `torch_reference.py peak` (the
machine's matrix-multiply peak through libtorch in that precision). FLOPs per image are
counted here from the models' multiply-accumulates (2 FLOPs each, convolutions and dense
layers, with PyTorch forward hooks); a training step counts 3x its forward pass (the forward,
and the backward's input and weight gradients), except `e`, whose frozen base runs forward
only. Needs torch (the venv of `cargo xtask setup`).
"""
import json, os, statistics, sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench"))
sys.path.insert(0, os.path.dirname(__file__))
import torch_reference as ref  # noqa: E402
import backbones_reference as bb  # noqa: E402


def forward_macs(model, shape):
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += output.numel() * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(shape))
    for h in handles:
        h.remove()
    return total / shape[0]


def flops_per_image():
    return {
        "a": 3 * 2 * forward_macs(ref.mnist_net(), (1, 1, 28, 28)),
        "a_inf": 2 * forward_macs(ref.mnist_net(), (1, 1, 28, 28)),
        "b": 3 * 2 * forward_macs(ref.small_convnet(), (1, 3, 180, 180)),
        "c": 2 * forward_macs(ref.vgg16_base(), (1, 3, 180, 180)),
        "c_mobilenet_v2": 2 * forward_macs(bb.mobilenet_v2(), (1, 3, 180, 180)),
        "c_efficientnet_lite0": 2 * forward_macs(bb.efficientnet_lite0(), (1, 3, 180, 180)),
        "e": 2 * forward_macs(bb.efficientnet_lite0(), (1, 3, 224, 224)),
    }


NAMES = {
    "a": "`a` MNIST convnet train step, batch 64",
    "a_inf": "`a_inf` MNIST convnet inference, batch 64",
    "b": "`b` cats-vs-dogs convnet train step, 180x180, batch 32",
    "c": "`c` VGG16 base inference, 180x180, batch 16",
    "c_mobilenet_v2": "MobileNetV2 inference, 180x180, batch 16",
    "c_efficientnet_lite0": "EfficientNet-Lite0 inference, 180x180, batch 16",
    "e": "`e` EfficientNet-Lite0 frozen + augmentation train step, 224x224, batch 32",
}


def main():
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
    peak = next((r for r in reversed(rows) if r.get("workload") == "peak"), {})
    rates = {}
    for r in rows:
        if "images_per_s" not in r:
            continue
        if r["engine"].startswith("convkit"):
            key = ("convkit", r.get("precision", "fp32"))
        else:
            key = ("pytorch" + (" channels_last" if r.get("channels_last") else ""), "bf16" if r.get("bf16") else "fp32")
        rates.setdefault(r["workload"], {}).setdefault(key, []).append(r["images_per_s"])
    flops = flops_per_image()
    med = lambda v: statistics.median(v) if v else float("nan")
    print(f"peak: fp32 {peak.get('fp32_gflops')} GFLOP/s, bf16 {peak.get('bf16_gflops')} GFLOP/s\n")
    print("| workload | precision | convkit | PyTorch | PyTorch channels_last | convkit / fastest PyTorch | convkit GFLOP/s | of peak |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for w, name in NAMES.items():
        if w not in rates:
            continue
        for precision in ("fp32", "bf16"):
            r = rates[w]
            if ("convkit", precision) not in r:
                continue
            ck = med(r.get(("convkit", precision), []))
            pt = med(r.get(("pytorch", precision), []))
            cl = med(r.get(("pytorch channels_last", precision), []))
            gflops = ck * flops[w] / 1e9
            p = peak.get(f"{precision}_gflops")
            share = f"{gflops / p:.0%}" if p else "-"
            print(f"| {name} | {precision} | {ck:,.1f} | {pt:,.1f} | {cl:,.1f} | {ck / max(pt, cl):.2f}x | {gflops:.0f} | {share} |")
    n = max(len(v) for r in rates.values() for v in r.values())
    print(f"\n(medians of {n} runs each)")


if __name__ == "__main__":
    main()
