"""Stored per-layer INT8 sensitivity rankings, so the sweep runs once per set of weights.

``svbr calibrate --precision int8`` keeps the most sensitive layers in float16 by
default (``--keep-fp16 auto``), which needs the layers ranked by the SSIM each one
loses when quantized alone (:func:`calibration.mixed.sensitivity`: 76 layers × a
few seconds on a CPU). The ranking depends on the weights, so it is measured once
and stored as JSON keyed by the SHA-256 of the weights (:func:`weights_sha256`):

* beside the model it was measured on: ``<model stem>_int8_ranking.json``
  (for the bundled model ``runtime/models/svbrnet_int8_ranking.json``, shipped
  with the package);
* in the calibration cache: ``<cache>/rankings/<sha256>.json``.

A later run reuses a stored ranking whose hash and layer names match the model
(the bundled one too, e.g. for a uint8-I/O export of the bundled weights); a
model with other weights, or ``--sensitivity``, measures it again and stores it.
The count of float16 layers is still searched and measured on every run
(:func:`calibration.mixed.choose_fp16_layers`), so a reused ranking never lets a
graph miss ``--target-ssim``: at worst it keeps a layer more than needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

#: Version of the stored file's layout.
FORMAT = 1

#: ``<model stem>`` + this = the ranking stored beside a model.
SUFFIX = "_int8_ranking.json"


def weights_sha256(model: onnx.ModelProto) -> str:
    """SHA-256 of a graph's weights: every initializer's name, dtype, shape and values, in name order.

    Independent of metadata and of how the values are stored in the protobuf (``raw_data`` or typed
    fields). Hash the float core (``export.io_wrap.strip_uint8_io``) so that an export with uint8 I/O
    keys the same ranking as the float export of the same weights.
    """
    digest = hashlib.sha256()
    for initializer in sorted(model.graph.initializer, key=lambda tensor: tensor.name):
        array = np.ascontiguousarray(numpy_helper.to_array(initializer))
        digest.update(f"{initializer.name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def path_beside(model_path: str | os.PathLike[str]) -> Path:
    """Where the ranking of ``model_path`` is stored beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + SUFFIX)


def bundled_ranking_path() -> Path:
    """The ranking shipped beside the bundled model."""
    from runtime.deblurrer import BUNDLED_MODEL_PATH

    return path_beside(BUNDLED_MODEL_PATH)


def cache_path(cache_dir: str | os.PathLike[str], sha256: str) -> Path:
    return Path(cache_dir) / "rankings" / f"{sha256}.json"


def candidate_paths(
    model_path: str | os.PathLike[str] | None, cache_dir: str | os.PathLike[str], sha256: str
) -> list[Path]:
    """Where to look, in order: beside the model, beside the bundled model, in the cache."""
    paths = [path_beside(model_path)] if model_path is not None else []
    paths += [bundled_ranking_path(), cache_path(cache_dir, sha256)]
    unique: list[Path] = []
    for path in paths:
        if path.resolve() not in {p.resolve() for p in unique}:
            unique.append(path)
    return unique


@dataclass(frozen=True)
class StoredRanking:
    """A ranking read back: the layers, most sensitive first, and where it came from."""

    path: Path
    weights_sha256: str
    layers: list[str]
    data: dict


def load_ranking(paths: Iterable[Path], sha256: str, layers: Iterable[str]) -> StoredRanking | None:
    """The first stored ranking for these weights (hash) and this graph (the same layer names)."""
    wanted = set(layers)
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(data, dict)
            and data.get("format") == FORMAT
            and data.get("weights_sha256") == sha256
            and isinstance(data.get("ranking"), list)
            and set(data["ranking"]) == wanted
            and len(data["ranking"]) == len(wanted)
        ):
            return StoredRanking(Path(path), sha256, list(data["ranking"]), data)
    return None


def save_ranking(
    paths: Iterable[Path],
    sha256: str,
    ranking: list[str],
    *,
    model_name: str,
    rows: list[dict] | None = None,
    measured: dict | None = None,
    settings: dict | None = None,
) -> list[Path]:
    """Write the ranking to each path (atomically); returns those written (an unwritable one is skipped)."""
    from runtime._version import __version__

    data = {
        "format": FORMAT,
        "weights_sha256": sha256,
        "model": model_name,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "svbr_version": __version__,
        "how": "svbr calibrate --precision int8 --sensitivity: each layer quantized alone, mean SSIM lost "
        "against the FP32 model on the calibration windows; most sensitive first",
        "settings": settings or {},
        "measured": measured or {},
        "ranking": list(ranking),
        "layers": rows or [],
    }
    written = []
    for path in paths:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            tmp.replace(path)
            written.append(path)
        except OSError:
            continue
    return written
