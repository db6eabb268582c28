"""Compare the outputs of two runners (the Polygraphy "comparator" role), numpy only.

Used by export parity checks (ONNX Runtime against PyTorch), by precision
validation and by the tiling tests; what produced the arrays is irrelevant here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from runtime.backends.base import Backend


@dataclass(frozen=True)
class Comparison:
    """How far ``test`` is from ``reference`` (both on a [0, 1] scale).

    Attributes:
        max_abs: largest absolute difference.
        mean_abs: mean absolute difference.
        psnr_db: PSNR of ``test`` against ``reference`` with peak 1 (inf when identical).
    """

    max_abs: float
    mean_abs: float
    psnr_db: float

    def __str__(self) -> str:
        return f"max |Δ| {self.max_abs:.3g}, mean |Δ| {self.mean_abs:.3g}, PSNR {self.psnr_db:.1f} dB"


def compare_outputs(reference: np.ndarray, test: np.ndarray) -> Comparison:
    """Compare two float arrays of one shape, computed in float64."""
    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if reference.shape != test.shape:
        raise ValueError(f"outputs differ in shape: {reference.shape} vs {test.shape}")
    difference = np.abs(reference - test)
    mse = float(np.mean(difference**2))
    psnr_db = float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))
    return Comparison(float(difference.max()), float(difference.mean()), psnr_db)


def random_network_inputs(batch: int, height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 network inputs: image N×3×H×W in [0, 1], map N×1×H×W in [0, 1]."""
    rng = np.random.default_rng(seed)
    image = rng.random((batch, 3, height, width), dtype=np.float32)
    blur_map = rng.random((batch, 1, height, width), dtype=np.float32)
    return image, blur_map


def compare_runners(
    reference: Callable[[np.ndarray, np.ndarray], np.ndarray] | Backend,
    test: Callable[[np.ndarray, np.ndarray], np.ndarray] | Backend,
    shapes: list[tuple[int, int, int]],
    seed: int = 0,
) -> list[tuple[tuple[int, int, int], Comparison]]:
    """Run two runners on the same random inputs at every (N, H, W) of ``shapes`` and compare.

    A runner is a :class:`Backend` or any ``f(image, blur_map) -> N×3×H×W`` callable.
    """

    def as_callable(runner: Callable[[np.ndarray, np.ndarray], np.ndarray] | Backend):
        return runner.run if isinstance(runner, Backend) else runner

    run_reference, run_test = as_callable(reference), as_callable(test)
    results = []
    for index, shape in enumerate(shapes):
        image, blur_map = random_network_inputs(*shape, seed=seed + index)
        results.append((shape, compare_outputs(run_reference(image, blur_map), run_test(image, blur_map))))
    return results
