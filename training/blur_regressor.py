"""Train the blur-map estimator's per-edge radius regressor (``runtime/models/blur_regressor.npz``).

    python -m training.blur_regressor --images ../shared/datasets/sharp-train

Issue 10 item 6 / research note §3.3-3.4: at every reliable edge pixel the
runtime's estimator (``runtime.estimate``) computes 11 features
(``runtime.estimate.edge_features``); a small ReLU MLP (11→64→64→1, L1 loss)
learns the disk radius from them. Training data: TRAINING-split photos only
(``split_by_image(..., seed)["train"]``; the validation photos stay for the
benchmark), 480×640, each blurred uniformly at 4 random levels of 0, 1, 1.5, …, 6 px by
``runtime.defocus.blur`` (r = 0.5 is the identity kernel, so it is left out), a third of
them with Gaussian noise (σ 0–5 levels) and a third JPEG-compressed (quality
60–94); at most 2,500 edge pixels per image. The weights are saved as plain
numpy arrays (``mean``, ``std``, ``w0``…, ``b0``…), which the runtime
evaluates with numpy (no torch, no ONNX Runtime). Deterministic for a seed;
about 1.5 minutes on one core.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from runtime.arguments import add_output
from runtime.defocus import blur
from runtime.estimate import REGRESSOR_PATH, edge_features, luminance, measure_sigma, multiscale_edges
from training.cache import find_images, load_sharp_rgb, split_by_image

#: Training blur radii (px): 0 and 1…6 (r = 0.5 is the identity kernel, so it is left out). Adding
#: 7 and 8 px (so blur beyond the range reads beyond it) was tried: validation dense-map MAE
#: 0.508 → 0.561 px and the saturation still did not show in the dense map, so it was dropped;
#: the runtime detects saturation with the table method instead.
LEVELS_PX = (0.0,) + tuple(0.5 * i for i in range(2, 13))


def uniform_blur(rgb: np.ndarray, radius: float) -> np.ndarray:
    return rgb if radius == 0 else blur(rgb, np.full(rgb.shape[:2], radius, np.float32))


def collect(images: Path, photos: int, seed: int, per_image: int = 2500) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 (N, 11), radius float32 (N,)) from training photos."""
    rng = np.random.default_rng(seed)
    train = split_by_image(find_images(images), seed=0)["train"]
    features, targets = [], []
    for index in rng.choice(len(train), min(photos, len(train)), replace=False):
        rgb = load_sharp_rgb(train[index], 480, 640)
        if rgb is None:
            continue
        for radius in rng.choice(LEVELS_PX, 4, replace=False):
            blurry = uniform_blur(rgb, float(radius))
            kind = rng.integers(0, 3)
            if kind == 1:
                noise = rng.normal(0.0, rng.uniform(0.0, 5.0), blurry.shape)
                blurry = np.clip(np.rint(blurry + noise), 0, 255).astype(np.uint8)
            elif kind == 2:
                _, data = cv2.imencode(".jpg", blurry, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 95))])
                blurry = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
            gray = luminance(blurry.astype(np.float32) / np.float32(255))
            run_length, edge_count = multiscale_edges(gray)
            mask, sigma = measure_sigma(gray, run_length)
            if not mask.any():
                continue
            x = edge_features(gray, run_length, edge_count, mask, sigma)
            pick = rng.choice(len(x), min(len(x), per_image), replace=False)
            features.append(x[pick])
            targets.append(np.full(len(pick), radius, np.float32))
    return np.concatenate(features), np.concatenate(targets)


def fit(x: np.ndarray, y: np.ndarray, seed: int, epochs: int = 12, hidden: int = 64) -> dict[str, np.ndarray]:
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    inputs = torch.tensor((x - mean) / std)
    targets = torch.tensor(y)
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))
    held_out, train = order[:30000], order[30000:]
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 1),
    )
    optimiser = torch.optim.Adam(net.parameters(), 3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
    for epoch in range(epochs):
        shuffled = train[torch.randperm(len(train))]
        for start in range(0, len(shuffled), 1024):
            batch = shuffled[start : start + 1024]
            loss = (net(inputs[batch])[:, 0] - targets[batch]).abs().mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
        with torch.no_grad():
            error = (net(inputs[held_out])[:, 0] - targets[held_out]).abs().mean().item()
        print(f"epoch {epoch + 1}/{epochs}: held-out per-edge MAE {error:.3f} px", flush=True)
    linear = [m for m in net if isinstance(m, torch.nn.Linear)]
    weights = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}
    for i, layer in enumerate(linear):
        weights[f"w{i}"] = layer.weight.detach().numpy().T.astype(np.float32).copy()
        weights[f"b{i}"] = layer.bias.detach().numpy().astype(np.float32).copy()
    return weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.blur_regressor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=Path("../shared/datasets/sharp-train"))
    parser.add_argument("--photos", type=int, default=60, help="training photos (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    add_output(
        parser, dest="out", type=Path, default=REGRESSOR_PATH, help="weights file (default: the bundled regressor)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    start = time.perf_counter()
    x, y = collect(args.images, args.photos, args.seed)
    print(f"{len(x)} edge samples from {args.photos} training photos ({time.perf_counter() - start:.0f} s)", flush=True)
    weights = fit(x, y, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **weights)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} kB) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
