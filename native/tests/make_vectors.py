"""Write the JSON test vectors that pin the C++ runtime to the Python one (runtime/tiling.py, deblurrer.py, pyramid.py).

    python native/tests/make_vectors.py            # (re)write native/tests/vectors/*.json
    python native/tests/make_vectors.py --check    # exit 1 if the checked-in vectors differ (drift)

The C++ tests (native/tests/test_vectors.cpp) read these files; tests/test_native.py runs --check in pytest.
Every expected value is computed by the Python runtime itself, so a change there shows up as drift here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime import pyramid  # noqa: E402
from runtime.backends import Backend  # noqa: E402
from runtime.constants import MAX_RADIUS_PX  # noqa: E402
from runtime.deblurrer import Deblurrer, image_to_network, map_to_network, network_to_image  # noqa: E402
from runtime.tiling import plan_tiles, reflect_indices, run_tiled  # noqa: E402

VECTOR_DIR = Path(__file__).resolve().parent / "vectors"
BOX_RADIUS = 2  # the fake model's receptive-field half-width


def _plans() -> dict:
    rng = np.random.default_rng(12)
    cases = []
    while len(cases) < 400:
        height, width = (int(v) for v in rng.integers(1, 701, size=2))
        tile = None if rng.random() < 0.15 else int(rng.integers(1, 301))
        halo = int(rng.integers(0, 101))
        multiple = int(rng.choice([1, 2, 4, 8]))
        plan = plan_tiles(height, width, tile, halo, multiple)
        if len(plan) > 150:  # keep the file small
            continue
        cases.append(
            {
                "height": height,
                "width": width,
                "tile": tile,
                "halo": halo,
                "multiple": multiple,
                "tile_height": plan.tile_height,
                "tile_width": plan.tile_width,
                "plan_halo": plan.halo,
                "origins": [list(o) for o in plan.origins],
            }
        )
    errors = []
    for height, width, tile, halo, multiple in [
        (0, 5, 8, 0, 4),
        (5, 0, 8, 0, 4),
        (5, 5, 0, 0, 4),
        (5, 5, -3, 0, 4),
        (5, 5, 8, -1, 4),
    ]:
        try:
            plan_tiles(height, width, tile, halo, multiple)
        except ValueError as error:
            errors.append(
                {
                    "height": height,
                    "width": width,
                    "tile": tile,
                    "halo": halo,
                    "multiple": multiple,
                    "message": str(error),
                }
            )
        else:  # pragma: no cover - the Python runtime changed
            raise AssertionError("expected ValueError")
    return {"cases": cases, "errors": errors}


def _reflect() -> dict:
    rng = np.random.default_rng(13)
    cases = []
    for _ in range(300):
        size = int(rng.integers(1, 51))
        start = int(rng.integers(-200, 201))
        stop = start + int(rng.integers(0, 101))
        cases.append(
            {
                "start": start,
                "stop": stop,
                "size": size,
                "indices": [int(i) for i in reflect_indices(start, stop, size)],
            }
        )
    return {"cases": cases}


def fake_model(images: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Integer-exact stand-in for the network: N×h×w×2 and N×h×w int64 -> N×h×w×2 int64.

    Channel 0: box sum (radius BOX_RADIUS, zeros outside the window) of image channel 0, plus 3 × radius;
    channel 1: 2 × image channel 1 − radius. With halo < BOX_RADIUS the tiled output differs from the
    full-frame one, which the vectors then pin too.
    """
    r = BOX_RADIUS
    padded = np.pad(images[..., 0], ((0, 0), (r, r), (r, r)))
    height, width = images.shape[1:3]
    box = np.zeros(images.shape[:3], dtype=np.int64)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            box += padded[:, dy : dy + height, dx : dx + width]
    return np.stack([box + 3 * radii, 2 * images[..., 1] - radii], axis=-1)


def _stitch() -> dict:
    rng = np.random.default_rng(14)
    height, width = 37, 41
    image = rng.integers(0, 1000, size=(height, width, 2), dtype=np.int64)
    radii = rng.integers(0, 50, size=(height, width), dtype=np.int64)
    cases = []
    for tile, halo, multiple, batch in [
        (None, 0, 4, 1),
        (None, 8, 4, 1),
        (8, 0, 4, 1),
        (8, 1, 4, 3),
        (8, 4, 4, 2),
        (12, 8, 4, 5),
        (5, 3, 1, 4),
        (16, 2, 2, 1),
        (7, 6, 8, 2),
        (100, 4, 4, 1),
    ]:
        output = run_tiled([image, radii], fake_model, tile=tile, halo=halo, batch_size=batch, multiple=multiple)
        cases.append(
            {"tile": tile, "halo": halo, "multiple": multiple, "batch": batch, "output": output.reshape(-1).tolist()}
        )
    return {
        "height": height,
        "width": width,
        "box_radius": BOX_RADIUS,
        "image": image.reshape(-1).tolist(),
        "radii": radii.reshape(-1).tolist(),
        "cases": cases,
    }


def _floats(array: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(array, dtype=np.float32).reshape(-1)]  # exact: float32 -> double


def _prepost() -> dict:
    rng = np.random.default_rng(15)
    u8 = np.arange(256, dtype=np.uint8)
    bgr = np.stack([u8, u8[::-1], np.roll(u8, 7)], axis=-1)[None, None]  # 1×1×256×3
    radii = np.concatenate(
        [
            np.array([0.0, 1e-7, 0.5, 1.0, 2.9999998, 3.0, 5.9999995, 6.0, 6.0000005, 7.0, 100.0, 1e30], np.float32),
            (rng.random(200) * 8).astype(np.float32),
        ]
    )
    # network outputs around every rounding tie k + 0.5 (in units of 1/255), out-of-range values, random values
    ties = (np.arange(256, dtype=np.float32) + np.float32(0.5)) / np.float32(255)
    outputs = np.concatenate(
        [
            ties,
            np.nextafter(ties, np.float32(0)),
            np.nextafter(ties, np.float32(1)),
            np.array([-1.0, -0.0, 0.0, 1.0, 1.5, 1e-9, 0.9999999], np.float32),
            rng.random(500).astype(np.float32),
        ]
    )
    count = len(outputs) - len(outputs) % 3
    sharp = outputs[:count].reshape(1, 3, 1, count // 3)  # N×3×1×W RGB
    return {
        "u8_bgr": bgr.reshape(-1).tolist(),
        "image_rgb_nchw": _floats(image_to_network(bgr, "bgr")),
        "radii": _floats(radii),
        "map": _floats(map_to_network(radii[None])),
        "sharp_nchw": _floats(sharp),
        "sharp_width": count // 3,
        "out_u8_bgr": network_to_image(sharp, np.uint8, "bgr").reshape(-1).tolist(),
        "out_f32_bgr": _floats(network_to_image(sharp, np.float32, "bgr")),
    }


# --- pyramid (runtime/pyramid.py and Deblurrer's pyramid path) ------------------------------------------------------

#: max_radius_px values of the weight, plan and deblur vectors: 6 · 2**k and two that are not.
PYRAMID_MAX_RADII = (6.0, 12.0, 20.5, 48.0, 100.0, 192.0)


def _step(value: float, ulps: int) -> np.float32:
    """The float32 ``ulps`` representable values above ``value`` (below for negative ``ulps``)."""
    result = np.float32(value)
    for _ in range(abs(ulps)):
        result = np.nextafter(result, np.float32(np.inf if ulps > 0 else -np.inf))
    return result


def _radius_candidates() -> np.ndarray:
    """float32 radii: 0, exactly and a few ulps around 6 · 2**k and the hand-over ends, the non-power limits,
    far above every max_radius_px, random radii in every hand-over zone and (log-uniform) over the whole range."""
    radii = [0.0, 1e-7, 3.0, _step(6, -1), 6.0, _step(6, 1), _step(6, 2)]
    for k in range(1, 6):
        radii += [_step(6 * 2**k, ulps) for ulps in (-2, -1, 0, 1, 2)]
    for k in range(5):  # 6 · 2**(k + 1/8): the end of the hand-over from level k to k + 1
        radii += [_step(6 * 2 ** (k + pyramid.TRANSITION_OCTAVES), ulps) for ulps in (-1, 0, 1)]
    for limit in (20.5, 100.0):
        radii += [_step(limit, ulps) for ulps in (-1, 0, 1)]
    radii += [200.0, 1000.0, 1e30]
    rng = np.random.default_rng(16)
    for k in range(5):
        radii += list(6 * 2 ** (k + rng.random(6) * pyramid.TRANSITION_OCTAVES))
    radii += list(6 * 2 ** rng.uniform(-2, 5.2, 60))
    return np.array(radii, np.float32)


def _rounded_coordinate(radius: np.float32, max_radius_px: float) -> np.float32:
    """C++'s level_coordinate, float32(log2(double(ratio))), with Python's (libm) double log2."""
    ratio = np.clip(radius, np.float32(MAX_RADIUS_PX), np.float32(max_radius_px)) / np.float32(MAX_RADIUS_PX)
    return np.float32(math.log2(float(ratio)))


def _vetted_radii() -> np.ndarray:
    """The candidates, after checking that the Python coordinate is C++'s (log2 in double, rounded once)."""
    radii = _radius_candidates()
    for limit in PYRAMID_MAX_RADII:
        coordinates = pyramid.level_coordinate(radii, limit)
        off = [float(r) for r, u in zip(radii, coordinates) if u != _rounded_coordinate(r, limit)]
        if off:
            raise AssertionError(f"runtime.pyramid.level_coordinate is not float(log2(double)) at radii {off}")
    return radii


def _level_counts_and_sizes() -> tuple[list, list]:
    limits = [6, 6.000001, 7, 11.999999, 12, 12.00000001, 12.0000001, 20.5, 24, 47.99, 48, 48.0001, 96, 100, 191.9, 192]
    shapes = [(size, 3 * size + 1) for size in range(1, 65)] + [(4000, 6000), (3456, 5184), (6001, 4003)]
    counts = [[limit, pyramid.level_count(limit)] for limit in limits]
    sizes = [[h, w, level, *pyramid.level_size(h, w, level)] for h, w in shapes for level in range(6)]
    return counts, sizes


def _weights(radii: np.ndarray) -> list[dict]:
    return [
        {
            "max_radius_px": limit,
            "coordinate": _floats(pyramid.level_coordinate(radii, limit)),
            "weights": _floats(pyramid.level_weights(radii, limit).T),  # level_count values per radius
        }
        for limit in PYRAMID_MAX_RADII
    ]


def _level_plans(radii: np.ndarray) -> list[dict]:
    """Level plans of small maps drawn from the vetted radii, and of a tall map that needs more than one strip."""
    rng = np.random.default_rng(17)
    small, large = radii[radii <= MAX_RADIUS_PX], radii[radii > MAX_RADIUS_PX]
    maps = [
        np.full((3, 4), 3.0, np.float32),
        np.array([[24.0]], np.float32),  # one pixel, on level 1/4 only: no level 0
        np.array([[1e30, 0.0]], np.float32),
    ]
    for height, width, share in [(1, 9, 0.2), (9, 1, 0.2), (3, 4, 0.1), (4, 5, 0.3), (5, 7, 0.5), (6, 6, 1.0)] * 2:
        blur_map = np.where(rng.random((height, width)) < share, rng.choice(large, (height, width)), rng.choice(small))
        maps.append(blur_map.astype(np.float32))
    tall = np.zeros((2 * pyramid.STRIP_ROWS + 88, 1), np.float32)
    tall[pyramid.STRIP_ROWS + 144, 0] = _step(12, 1)  # levels 1/2 and (a hair of) 1/4, in the second strip only
    maps.append(tall)
    return [
        {
            "height": blur_map.shape[0],
            "width": blur_map.shape[1],
            "map": _floats(blur_map),
            "levels": [[limit, list(pyramid.level_plan(blur_map, limit))] for limit in PYRAMID_MAX_RADII],
        }
        for blur_map in maps
    ]


def _resize_area() -> list[dict]:
    """cv2.resize(INTER_AREA) downscales: 2× (OpenCV's 2×2 fast paths, with a SIMD tail), 3×, 4×, the pyramid's
    level sizes of odd images and other non-integer factors. A float source is its uint8 values / `divisor`."""
    rng = np.random.default_rng(18)
    cases = []
    for dtype, channels, (height, width), (dst_height, dst_width), divisor in [
        ("uint8", 1, (16, 22), (8, 11), None),
        ("uint8", 3, (16, 22), (8, 11), None),
        ("uint8", 4, (8, 10), (4, 5), None),
        ("uint8", 1, (9, 12), (3, 4), None),
        ("uint8", 3, (20, 24), (5, 6), None),
        ("uint8", 1, (37, 9), (18, 4), None),  # 37 -> 18 down, 9 -> 4 across
        ("uint8", 1, (6, 101), (3, 25), None),  # 2× down, 101 -> 25 across: not an integer pair
        ("uint8", 3, (11, 15), (6, 8), None),  # level 1/2 of an 11×15 image (5.5 -> 6, 7.5 -> 8)
        ("uint8", 1, (20, 22), (10, 5), None),  # 2× down, 4.4× across: not an integer pair
        ("uint8", 3, (7, 9), (7, 9), None),  # same size: a copy
        ("float32", 1, (16, 22), (8, 11), 255.0),
        ("float32", 3, (16, 22), (8, 11), 255.0),
        ("float32", 4, (8, 10), (4, 5), 255.0),
        ("float32", 1, (20, 24), (5, 6), 255.0),
        ("float32", 3, (9, 12), (3, 4), 255.0),
        ("float32", 1, (101, 5), (25, 2), 255.0),
        ("float32", 3, (37, 5), (18, 2), 255.0),
        ("float32", 1, (11, 15), (6, 8), 8.5),  # level maps of radii 0-30 px
        ("float32", 1, (11, 15), (3, 4), 8.5),
        ("float32", 1, (11, 15), (1, 2), 8.5),
    ]:
        source = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
        image = source if divisor is None else source.astype(np.float32) / np.float32(divisor)
        small = cv2.resize(image, (dst_width, dst_height), interpolation=cv2.INTER_AREA)
        cases.append(
            {
                "dtype": dtype,
                "channels": channels,
                "height": height,
                "width": width,
                "dst_height": dst_height,
                "dst_width": dst_width,
                "divisor": divisor,
                "source": source.reshape(-1).tolist(),
                "expected": small.reshape(-1).tolist() if divisor is None else _floats(small),
            }
        )
    return cases


def _bilinear_taps() -> list[dict]:
    cases = []
    # the pyramid's upsampling of an 11×15 image's levels, other factors, single samples
    sizes = [(11, 6), (11, 3), (11, 1), (15, 8), (15, 4), (15, 2), (8, 4), (37, 18), (101, 25), (7, 4), (5, 1)]
    for size_out, size_in in [*sizes, (1, 1), (3, 2), (200, 25), (199, 100)]:
        lower, upper, weight = pyramid.bilinear_taps(np.arange(size_out), size_out, size_in)
        cases.append(
            {
                "size_out": size_out,
                "size_in": size_in,
                "lower": lower.tolist(),
                "upper": upper.tolist(),
                "weight": _floats(weight),
            }
        )
    return cases


class BoxBackend(Backend):
    """svbr::test::BoxBackend (native/tests/test_helpers.hpp) in numpy, float for float: per channel the box sum
    of radius ``radius`` over the window (zeros outside, added in C++'s order), / (2r+1)², plus 0.01 × map."""

    name, device, precision, preferred_batch_size = "fake-box", "cpu", "fp32", 1

    def __init__(self, radius: int) -> None:
        self.radius, self.model_path, self.metadata = radius, Path("fake.onnx"), {}

    def run(self, image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        r = self.radius
        height, width = image.shape[2:]
        padded = np.pad(image, ((0, 0), (0, 0), (r, r), (r, r)))
        total = np.zeros_like(image)
        for dy in range(2 * r + 1):
            for dx in range(2 * r + 1):
                total = total + padded[:, :, dy : dy + height, dx : dx + width]
        return total / np.float32((2 * r + 1) ** 2) + np.float32(0.01) * blur_map


def _deblur(radii: np.ndarray) -> dict:
    """Deblurrer's pyramid path around BoxBackend on an 11×15 image, radii 0-30 px (left to right, vetted radii)."""
    rng = np.random.default_rng(19)
    height, width = 11, 15
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    pool = np.sort(radii[radii <= 32])
    target = np.linspace(0, 30, width, dtype=np.float32)[None, :] + rng.normal(0, 1.5, (height, width))
    blur_map = pool[np.abs(pool[None, None, :] - target[..., None]).argmin(axis=-1)]  # nearest vetted radius
    cases = []
    for dtype, tile, halo, batch, strength, limit in [
        ("uint8", None, 2, 1, 1.0, 48.0),
        ("uint8", 8, 2, 3, 1.0, 48.0),
        ("uint8", 4, 0, 2, 1.0, 48.0),  # no halo (< the box radius): every window's border shows, at every level
        ("uint8", 8, 2, 1, 1.0, 12.0),
        ("uint8", 8, 2, 1, 1.0, 192.0),
        ("uint8", 8, 2, 1, 0.5, 48.0),
        ("uint8", 8, 2, 2, 1.7, 20.5),
        ("uint8", 8, 2, 1, 1.0, 6.0),  # today's single pass (radii clipped to 6 px)
        ("float32", 8, 0, 2, 1.0, 48.0),
        ("float32", None, 2, 1, 0.5, 100.0),
    ]:
        source = image if dtype == "uint8" else image.astype(np.float32) / np.float32(255)
        deblurrer = Deblurrer(
            backend=BoxBackend(2), tile=tile, halo=halo, batch_size=batch, strength=strength, max_radius_px=limit
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # radii above max_radius_px
            sharp = deblurrer.deblur(source, blur_map)
        cases.append(
            {
                "dtype": dtype,
                "tile": tile,
                "halo": halo,
                "batch": batch,
                "strength": strength,
                "max_radius_px": limit,
                "levels": list(pyramid.level_plan(blur_map, limit)),
                "output": sharp.reshape(-1).tolist() if dtype == "uint8" else _floats(sharp),
            }
        )
    return {
        "height": height,
        "width": width,
        "box_radius": 2,
        "image": image.reshape(-1).tolist(),
        "radius_px": _floats(blur_map),
        "cases": cases,
    }


def _pyramid() -> dict:
    radii = _vetted_radii()
    counts, sizes = _level_counts_and_sizes()
    return {
        "level_count": counts,
        "level_size": sizes,
        "radii": _floats(radii),
        "weights": _weights(radii),
        "level_plan": _level_plans(radii),
        "resize_area": _resize_area(),
        "bilinear_taps": _bilinear_taps(),
        "deblur": _deblur(radii),
    }


def build_vectors() -> dict[str, str]:
    """File name -> JSON text."""
    vectors = {
        "plans.json": _plans(),
        "reflect.json": _reflect(),
        "stitch.json": _stitch(),
        "prepost.json": _prepost(),
        "pyramid.json": _pyramid(),
    }
    return {name: json.dumps(data, separators=(",", ":")) + "\n" for name, data in vectors.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the checked-in files instead of writing")
    args = parser.parse_args(argv)
    drifted = []
    for name, text in build_vectors().items():
        path = VECTOR_DIR / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                drifted.append(name)
        else:
            VECTOR_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if drifted:
        print(
            f"test vectors drifted from runtime/: {', '.join(drifted)}; regenerate with "
            "`python native/tests/make_vectors.py`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
