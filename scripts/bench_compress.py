"""Compression benchmark on a real network: EfficientNet-Lite0 at 224 px on the CPU (not a test).

Prints one table (weights file size, latency at batch 1 and batch 64, threads fixed) for:
fp32 eager, fp32 compiled, unstructured 80 % zeros, channels pruned (torch-pruning), int8 (PT2E,
compiled) and pruned + int8, all measured with ``tlcourse.compress.measure``. Without ImageNet
images here, accuracy is replaced by the *agreement* of each variant's top-1 ImageNet class
with fp32's on 64 random crops of scikit-learn's two bundled photographs (calibration uses other
crops). The pruned rows are not fine-tuned (see notebooks/10_compression.ipynb for the
recovery fine-tune), so their agreement only shows how much an untuned pruning breaks.

    OMP_NUM_THREADS=1 python scripts/bench_compress.py [--threads 1] [--repeats 3] [--amount 0.3]
"""

from __future__ import annotations

import argparse
import platform
import time

import pandas as pd
import torch

from tlcourse import compress, quantize, zoo
from tlcourse.surgery import count_parameters

NAME = "efficientnet-lite0"


def photo_crops(n: int, seed: int, size: int = 224) -> torch.Tensor:
    """``n`` random crops ``(n, 3, size, size)`` of scikit-learn's two bundled photographs (a
    temple, a flower), normalised for EfficientNet-Lite0 (mean = std = 0.5): real photos, offline."""
    from sklearn.datasets import load_sample_images
    from torchvision.transforms import v2

    photos = [torch.from_numpy(p).permute(2, 0, 1) for p in load_sample_images().images]
    crop = v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True)
    torch.manual_seed(seed)
    x = torch.stack([crop(photos[i % len(photos)]) for i in range(n)]).float() / 255
    return (x - 0.5) / 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--amount", type=float, default=0.3, help="channel pruning ratio")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = zoo.load_imagenet(NAME).model.eval()
    calibration = photo_crops(64, seed=1).split(16)
    probe = photo_crops(64, seed=0)
    with torch.no_grad():
        reference = model(probe).argmax(-1)

    def agreement(variant) -> float:
        with torch.no_grad():
            return float((variant(probe).argmax(-1) == reference).float().mean())

    variants, seconds = {}, {}
    start = time.perf_counter()
    variants["fp32 eager"] = model
    variants["fp32 compiled"] = quantize.compile_for_cpu(model, probe[:16])
    seconds["fp32 compiled"] = time.perf_counter() - start
    variants["unstructured 80 % zeros"] = compress.magnitude_prune(model, 0.8)
    start = time.perf_counter()
    pruned = compress.prune_channels(model, args.amount, probe[:2])
    variants[f"channels pruned {args.amount:.0%}"] = pruned
    seconds[f"channels pruned {args.amount:.0%}"] = time.perf_counter() - start
    for name, source in (("int8 compiled", model), ("pruned + int8 compiled", pruned)):
        start = time.perf_counter()
        variants[name] = quantize.quantize_int8(source, calibration)
        seconds[name] = time.perf_counter() - start
    rows = {}
    for name, variant in variants.items():
        row = compress.measure(
            variant,
            probe,
            batch_sizes=(1, 64),
            warmup=args.warmup,
            repeats=args.repeats,
            threads=args.threads,
        )
        row["top-1 agreement with fp32"] = agreement(variant)
        row["prepare (s)"] = seconds.get(name, 0.0)
        if isinstance(variant, torch.nn.Module) and "int8" not in name and name != "fp32 compiled":
            row["parameters (M)"] = count_parameters(variant) / 1e6
        rows[name] = row
        print(f"{name}: {row}", flush=True)
    table = pd.DataFrame(rows).T.rename(
        columns={"size_mb": "size (MB)", "ms_b1": "ms @ batch 1", "ms_b64": "ms @ batch 64"}
    )
    print(
        f"\n{NAME} at 224 px, torch {torch.__version__}, {platform.processor() or platform.machine()}"
    )
    print(
        f"threads: {args.threads}; latency = median of {args.repeats} after {args.warmup} warm-up"
    )
    print(table.drop(columns="threads").to_string(float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
