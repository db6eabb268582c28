"""Property-based tests: random shapes, dtypes, channel counts and maps thrown at ``Deblurrer.deblur`` and the stream.

Every outcome must be a correct image (same shape and dtype; identity backend: the same pixels) or a clear
typed error (``ValueError`` from ``deblur``; a ``StreamError`` subclass from the stream) — never another exception.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from stream_helpers import identity_deblurrer  # noqa: E402

from runtime.stream import MapError, SourceError, StreamError  # noqa: E402

DTYPES = [np.uint8, np.uint16, np.float32, np.float64, np.int32, np.bool_, np.int8]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def images(draw):
    height = draw(st.integers(0, 20))
    width = draw(st.integers(0, 20))
    layout = draw(st.sampled_from(["hw", "hw1", "hw2", "hw3", "hw4", "hw5", "1d", "4d"]))
    dtype = draw(st.sampled_from(DTYPES))
    shape = {
        "hw": (height, width),
        "hw1": (height, width, 1),
        "hw2": (height, width, 2),
        "hw3": (height, width, 3),
        "hw4": (height, width, 4),
        "hw5": (height, width, 5),
        "1d": (width,),
        "4d": (1, height, width, 3),
    }[layout]
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    if dtype == np.float32 or dtype == np.float64:
        image = rng.random(shape).astype(dtype)
        if draw(st.booleans()) and image.size:
            image.flat[0] = draw(st.sampled_from([np.nan, -0.5, 2.0, np.inf]))
    elif dtype == np.bool_:
        image = rng.random(shape) > 0.5
    else:
        info = np.iinfo(dtype)
        image = rng.integers(info.min, int(info.max) + 1, shape, dtype=dtype)
    return image


@st.composite
def maps_for(draw, shape):
    kind = draw(st.sampled_from(["ok", "nan", "negative", "huge", "mismatch", "int", "3d", "scalar"]))
    height, width = (shape[0], shape[1]) if len(shape) >= 2 else (1, 1)
    radius = np.full((height, width), draw(st.floats(0, 6)), np.float32)
    if kind == "nan" and radius.size:
        radius.flat[0] = np.nan
    elif kind == "negative" and radius.size:
        radius.flat[-1] = -1
    elif kind == "huge":
        radius[:] = 1e30
    elif kind == "mismatch":
        radius = np.ones((height + 1, width), np.float32)
    elif kind == "int":
        radius = radius.astype(np.int64)
    elif kind == "3d":
        radius = radius[None]
    elif kind == "scalar":
        return np.float32(2.0)
    return radius


def _check_identity(image, sharp):
    assert sharp.shape == image.shape and sharp.dtype == image.dtype
    if image.dtype == np.float32:
        assert np.allclose(sharp, image, atol=1e-6)
    else:
        assert np.array_equal(sharp, image)


@SETTINGS
@given(data=st.data())
def test_deblur_gives_a_correct_image_or_a_value_error(data):
    image = data.draw(images())
    radius = data.draw(maps_for(image.shape))
    deblurrer = identity_deblurrer()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # radii > 6 px: clipped with a warning, tested elsewhere
            sharp = deblurrer.deblur(image, radius)
    except ValueError:
        return
    _check_identity(image, sharp)


@SETTINGS
@given(data=st.data())
def test_stream_gives_correct_frames_or_a_typed_error(data):
    image = data.draw(images())
    radius = data.draw(maps_for(image.shape))
    blur_map = data.draw(st.sampled_from(["array", "callable"]))
    provider = radius if blur_map == "array" else (lambda frame: radius)
    deblurrer = identity_deblurrer()
    try:
        results = list(deblurrer.frames([image, image], blur_map=provider))
    except (SourceError, MapError) as error:
        assert isinstance(error, StreamError) and str(error)
        return
    assert [r.index for r in results] == [0, 1]
    for result in results:
        _check_identity(image, result.sharp)
