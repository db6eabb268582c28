"""Write the JSON test vectors that pin the C++ runtime to the Python one (runtime/tiling.py, runtime/deblurrer.py).

    python native/tests/make_vectors.py            # (re)write native/tests/vectors/*.json
    python native/tests/make_vectors.py --check    # exit 1 if the checked-in vectors differ (drift)

The C++ tests (native/tests/test_vectors.cpp) read these files; tests/test_native.py runs --check in pytest.
Every expected value is computed by the Python runtime itself, so a change there shows up as drift here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime.deblurrer import image_to_network, map_to_network, network_to_image  # noqa: E402
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


def build_vectors() -> dict[str, str]:
    """File name -> JSON text."""
    vectors = {"plans.json": _plans(), "reflect.json": _reflect(), "stitch.json": _stitch(), "prepost.json": _prepost()}
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
