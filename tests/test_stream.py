"""Camera-pipeline streaming (runtime/stream): URIs, sources, sinks, maps, the threaded pipeline, errors.

Fast and CPU-only: frames come from ``testsrc://`` or small lossless videos the
tests write, every frame carries its index (``encode_index``), and the
network is an identity backend behind the real ``Deblurrer`` (bit-exact), except
one short run with the bundled model.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time

import cv2
import numpy as np
import pytest
from stream_helpers import identity_deblurrer, read_video, stream_threads_alive, write_video

from runtime.deblurrer import BUNDLED_MODEL_PATH, Deblurrer
from runtime.stream import (
    DeblurError,
    MapError,
    SinkError,
    SourceError,
    StreamError,
    StreamRunner,
    TestSource,
    UriError,
    decode_index,
    estimator_available,
    parse_sink,
    parse_source,
    run_stream,
)
from runtime.stream.maps import Frame, StaticMap, rescale_map
from runtime.stream.pipeline import FrameQueue

HAS_GST = shutil.which("gst-launch-1.0") is not None


@pytest.fixture(autouse=True)
def no_threads_left():
    yield
    deadline = time.monotonic() + 3
    while stream_threads_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not stream_threads_alive(), stream_threads_alive()


# --- URIs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kind",
    [
        ("clip.mp4", "video"),
        ("file:///data/clip.mkv", "video"),
        ("photo.png", "images"),
        ("frames/*.png", "images"),
        ("frames/img_%06d.png", "images"),
        ("frames/", "images"),
        ("/dev/video0", "v4l2"),
        ("v4l2:///dev/video1", "v4l2"),
        ("rtsp://cam.local:554/s", "network"),
        ("https://host/live.m3u8", "network"),
        ("udp://127.0.0.1:5004", "network"),
        ("tcp://h:1", "network"),
        ("gst:videotestsrc ! appsink", "gst"),
        ("csi://0", "csi"),
        ("testsrc://?size=32x16&fps=5&live=1", "test"),
    ],
)
def test_parse_source_table(name, kind):
    assert parse_source(name).kind == kind


def test_parse_source_details(tmp_path):
    assert "sensor-id=1" in parse_source("csi://1").location
    assert parse_source("csi://0").is_live and parse_source("/dev/video0").is_live
    assert parse_source("testsrc://?live=1").is_live and not parse_source("testsrc://").is_live
    assert parse_source("v4l2://2").location == "/dev/video2"
    assert parse_source(str(tmp_path)).kind == "images"  # an existing folder
    for bad in ("0", 0, "  3 ", "ftp2://x", "testsrc://?size=abc", "testsrc://?bogus=1", "gst:", "nothing_here"):
        with pytest.raises(UriError) as info:
            parse_source(bad)
        if str(bad).strip() in ("0", "3"):
            assert "csi://" in str(info.value) and "/dev/video" in str(info.value)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("out.mkv", "video"),
        ("out.mp4", "video"),
        ("out.avi", "video"),
        ("out/%06d.png", "images"),
        ("outdir/", "images"),
        ("null://", "null"),
        ("gst:theoraenc ! oggmux ! filesink location=x.ogg", "gst"),
    ],
)
def test_parse_sink_table(name, kind):
    assert parse_sink(name).kind == kind


@pytest.mark.parametrize("bad", ["out.png", "out.xyz", "0", "rtsp://x/y", ""])
def test_parse_sink_refuses(bad):
    with pytest.raises(UriError):
        parse_sink(bad)


# --- files in, files out ---------------------------------------------------------


def test_file_to_file_exact_ffv1(tmp_path):
    frames = write_video(tmp_path / "in.mkv", 24, fps=25)
    with identity_deblurrer() as d:
        stats = d.stream(tmp_path / "in.mkv", tmp_path / "out.mkv", blur_map=2.0)
    assert (stats.captured, stats.processed, stats.written, stats.dropped) == (24, 24, 24, 0)
    assert stats.drop == "never" and stats.error is None and not stats.threads_alive
    out = read_video(tmp_path / "out.mkv")
    assert [decode_index(f) for f in out] == list(range(24))
    assert all(np.array_equal(a, b) for a, b in zip(out, frames))
    assert cv2.VideoCapture(str(tmp_path / "out.mkv")).get(cv2.CAP_PROP_FPS) == pytest.approx(25, abs=0.01)
    assert stats.stages["deblur"]["count"] == 24 and stats.latency["p99_ms"] >= stats.latency["p50_ms"] > 0


def test_slow_backend_keeps_every_file_frame_in_order_and_bounds_queues(tmp_path):
    write_video(tmp_path / "in.mkv", 16)
    with identity_deblurrer(delay_s=0.02) as d:
        stats = d.stream(tmp_path / "in.mkv", tmp_path / "out.mkv", blur_map=1.0, queue=2)
    out = read_video(tmp_path / "out.mkv")
    assert [decode_index(f) for f in out] == list(range(16)) and stats.dropped == 0
    assert stats.peak_queue["input"] <= 2 and stats.peak_queue["output"] <= stats.queue_capacity["output"]


@pytest.mark.skipif(not BUNDLED_MODEL_PATH.is_file(), reason="bundled model missing")
def test_real_bundled_model_equals_deblur(tmp_path):
    frames = write_video(tmp_path / "in.mkv", 3, size=(48, 32))
    radius = np.linspace(0, 5, 48 * 32, dtype=np.float32).reshape(32, 48)
    with Deblurrer(tile=None) as d:
        results = list(d.frames(tmp_path / "in.mkv", blur_map=radius))
        expected = [d.deblur(f, radius) for f in frames]
    assert [r.index for r in results] == [0, 1, 2]
    for result, want in zip(results, expected):
        assert np.array_equal(result.sharp, want)


def test_folder_glob_pattern_in_and_pattern_out(tmp_path):
    source = TestSource((40, 30), frames=-1)
    (tmp_path / "in").mkdir()
    for i in (1, 2, 10):  # natural order: 2 before 10
        cv2.imwrite(str(tmp_path / "in" / f"img{i}.png"), source.make_frame(i))
    with identity_deblurrer() as d:
        for name in (tmp_path / "in", str(tmp_path / "in" / "img*.png"), str(tmp_path / "in" / "img%d.png")):
            out = tmp_path / f"out{abs(hash(str(name)))}"
            stats = d.stream(name, str(out) + "/", blur_map=1.0)
            assert stats.written == 3
            files = sorted(out.iterdir())
            assert [f.name for f in files] == ["000000.png", "000001.png", "000002.png"]
            assert [decode_index(cv2.imread(str(f))) for f in files] == [1, 2, 10]
        stats = d.stream(str(tmp_path / "in" / "img2.png"), tmp_path / "single_%03d.png", blur_map=1.0)
        assert stats.written == 1 and (tmp_path / "single_000.png").is_file()


def test_iterator_form_unpacks_and_stops_on_break(tmp_path):
    with identity_deblurrer() as d:
        seen = []
        with d.frames("testsrc://?frames=50&size=32x24", blur_map=1.5) as frames:
            for image, sharp in frames:
                assert np.array_equal(image, sharp)
                seen.append(decode_index(sharp))
                if len(seen) == 5:
                    break
        assert seen == [0, 1, 2, 3, 4] and frames.stats.written == 5
        results = list(d.frames("testsrc://?frames=4&size=32x24", blur_map=0.5))
        assert [r.index for r in results] == [0, 1, 2, 3] and results[0].blur_map.max() == 0.5


def test_user_objects_iterables_and_callables(tmp_path):
    class Camera:
        name, is_live, fps = "my-camera", False, 10.0

        def __init__(self):
            self.i, self.closed = 0, False
            self.maker = TestSource((24, 16), frames=-1)

        def read(self):
            self.i += 1
            return self.maker.make_frame(self.i - 1) if self.i <= 3 else None

        def close(self):
            self.closed = True

    class Collector:
        def __init__(self):
            self.frames, self.closed = [], False

        def write(self, image):
            self.frames.append(image)

        def close(self):
            self.closed = True

    camera, collector, results = Camera(), Collector(), []
    with identity_deblurrer() as d:
        d.stream(camera, collector, blur_map=1.0)
        d.stream([camera.maker.make_frame(7)] * 2, results.append, blur_map=1.0)
    assert camera.closed and collector.closed and [decode_index(f) for f in collector.frames] == [0, 1, 2]
    assert [r.index for r in results] == [0, 1] and decode_index(results[0].sharp) == 7


def test_loop_rate_flip_resize_and_frames_limit(tmp_path):
    with identity_deblurrer() as d:
        out = []
        stats = d.stream("testsrc://?frames=3&size=32x24", out.append, blur_map=1.0, loop=2)
        assert stats.written == 9 and [decode_index(r.sharp) for r in out] == [0, 1, 2] * 3
        out.clear()
        stats = d.stream("testsrc://?frames=30&fps=30&size=32x24", out.append, blur_map=1.0, rate=10)
        assert stats.written == 10 and stats.skipped == 20 and [r.index for r in out][:3] == [0, 3, 6]
        out.clear()
        d.stream("testsrc://?frames=2&size=32x24", out.append, blur_map=1.0, flip="clockwise", size=(12, None))
        assert out[0].sharp.shape == (16, 12, 3)
        stats = d.stream("testsrc://?live=1&fps=200&size=16x16", None, blur_map=1.0, max_frames=5)
        assert stats.captured == 5


# --- blur maps ------------------------------------------------------------------------


def _maps_seen(d, source, blur_map, **options):
    return [(r.index, r.blur_map) for r in d.frames(source, blur_map=blur_map, **options)]


def test_every_map_form(tmp_path):
    h, w = 24, 32
    np.save(tmp_path / "static.npy", np.full((h, w), 2.0, np.float32))
    sequence = np.stack([np.full((h, w), i * 0.5, np.float32) for i in range(4)])
    np.save(tmp_path / "seq.npy", sequence)
    (tmp_path / "maps").mkdir()
    for i in range(4):
        cv2.imwrite(str(tmp_path / "maps" / f"m{i}.png"), np.full((h, w), 10 * i, np.uint16))
    writer = cv2.VideoWriter(
        str(tmp_path / "maps.mkv"),
        cv2.CAP_FFMPEG,
        cv2.VideoWriter_fourcc(*"FFV1"),
        25,
        (w, h),
        [cv2.VIDEOWRITER_PROP_IS_COLOR, 0, cv2.VIDEOWRITER_PROP_DEPTH, cv2.CV_16U],
    )
    for i in range(4):
        writer.write(np.full((h, w), 1000 * i + 7, np.uint16))
    writer.release()
    src = f"testsrc://?frames=4&size={w}x{h}"
    with identity_deblurrer() as d:
        for blur_map, expect in [
            (3.0, [3.0] * 4),
            ("3", [3.0] * 4),
            (tmp_path / "static.npy", [2.0] * 4),
            (tmp_path / "seq.npy", [0, 0.5, 1.0, 1.5]),
            (sequence, [0, 0.5, 1.0, 1.5]),
            (str(tmp_path / "maps"), [0, 0.5, 1.0, 1.5]),
            (tmp_path / "maps.mkv", [0.007, 1.007, 2.007, 3.007]),
            (lambda frame: np.full(frame.image.shape[:2], frame.index / 4), [0, 0.25, 0.5, 0.75]),
            (9.0, [9.0] * 4),  # within the deblurrer's max_radius_px (48): the pyramid takes it
            (60.0, [48.0] * 4),  # clipped to the deblurrer's max_radius_px, as deblur does
        ]:
            seen = _maps_seen(d, src, blur_map, map_scale=0.05 if "maps" in str(blur_map) else None)
            if str(blur_map).endswith("maps.mkv"):
                seen = _maps_seen(d, src, blur_map, map_scale=0.001)
            assert [i for i, _ in seen] == [0, 1, 2, 3], blur_map
            assert [float(m.mean()) for _, m in seen] == pytest.approx(expect, abs=1e-4), blur_map
            assert all(m.shape == (h, w) for _, m in seen)


def test_static_map_rescaled_with_radii_when_frames_are_resized(tmp_path):
    radius = np.full((24, 32), 4.0, np.float32)
    with identity_deblurrer() as d:
        seen = _maps_seen(d, "testsrc://?frames=2&size=32x24", radius, size=(16, 12))
    assert seen[0][1].shape == (12, 16) and float(seen[0][1].mean()) == pytest.approx(2.0)
    with pytest.raises(MapError, match="aspect"):
        rescale_map(radius, (24, 16))
    frame = Frame(3, np.zeros((10, 10, 3), np.uint8), 0.0, source_size=(10, 10), source="cam")
    with pytest.raises(MapError, match=r"32×24 px but the frame is 10×10") as info:
        StaticMap(radius)(frame)
    assert info.value.frame == 3 and "cam" in str(info.value)


@pytest.mark.parametrize(
    "blur_map, match",
    [
        (np.full((24, 32), np.nan, np.float32), "NaN"),
        (np.full((24, 32), -1.0, np.float32), "negative"),
        (np.zeros((10, 10), np.float32), "10×10"),
        (-2.0, ">= 0"),
        ("missing.npy", "not found"),
        (np.zeros((2, 3, 4, 5)), "H×W or N×H×W"),
        (True, "bool"),
        (object(), "cannot use"),
    ],
)
def test_map_failures_are_typed(blur_map, match):
    with identity_deblurrer() as d:
        with pytest.raises(MapError, match=match):
            d.stream("testsrc://?frames=2&size=32x24", None, blur_map=blur_map)


def test_map_sequence_that_runs_out_names_the_frame_and_output_is_kept(tmp_path):
    with identity_deblurrer() as d:
        with pytest.raises(MapError, match="ended at frame 3") as info:
            d.stream("testsrc://?frames=6&size=32x24", tmp_path / "o.mkv", blur_map=np.ones((3, 24, 32), np.float32))
    assert info.value.frame == 3 and info.value.stats.written == 3
    assert len(read_video(tmp_path / "o.mkv")) == 3


def test_map_callable_errors_and_live_sequences(tmp_path):
    def broken(frame):
        if frame.index == 2:
            raise KeyError("depth")
        return np.ones(frame.image.shape[:2])

    with identity_deblurrer() as d:
        with pytest.raises(MapError, match="frame 2.*KeyError") as info:
            d.stream("testsrc://?frames=5&size=32x24", None, blur_map=broken)
        assert info.value.frame == 2
        with pytest.raises(MapError, match="live"):
            d.stream("testsrc://?live=1&size=32x24", None, blur_map=np.ones((3, 24, 32)))
        with pytest.raises(MapError, match="no .npy/.png maps"):
            d.stream("testsrc://?frames=1", None, blur_map=str(tmp_path))
        cv2.imwrite(str(tmp_path / "m0.png"), np.zeros((24, 32), np.uint8))
        with pytest.raises(MapError, match="map_scale"):
            d.stream("testsrc://?frames=1", None, blur_map=str(tmp_path))


@pytest.mark.skipif(not estimator_available(), reason="runtime.estimate.estimate_blur_map not present")
def test_estimated_maps_every_k_frames(monkeypatch):
    import runtime.estimate

    calls = []
    real = runtime.estimate.estimate_blur_map

    def counting(image, **kwargs):
        calls.append(image.shape)
        return real(image, **kwargs)

    monkeypatch.setattr(runtime.estimate, "estimate_blur_map", counting)
    with identity_deblurrer() as d:
        seen = _maps_seen(d, "testsrc://?frames=5&size=48x32", "estimate:2")
        assert len(calls) == 3 and [i for i, _ in seen] == list(range(5))
        assert all(m.shape == (32, 48) and m.min() >= 0 for _, m in seen)
        calls.clear()
        assert len(_maps_seen(d, "testsrc://?frames=2&size=48x32&channels=1", None)) == 2 and len(calls) == 2


# --- live sources ------------------------------------------------------------------------


def test_live_source_drops_oldest_keeps_order_and_bounds_latency():
    with identity_deblurrer(delay_s=0.05) as d:
        out = []
        stats = d.stream("testsrc://?live=1&fps=50&frames=60&size=32x24", out.append, blur_map=1.0)
    indices = [r.index for r in out]
    assert stats.drop == "oldest" and stats.dropped > 0
    assert stats.captured == stats.processed + stats.dropped + stats.discarded
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert stats.peak_queue["input"] <= 1
    # one frame in service + one waiting: ~2 × 50 ms; generous for a busy 2-core CI machine
    assert stats.latency["p50_ms"] < 300


def test_live_source_with_drop_never_loses_nothing():
    """The pipeline drops nothing: every frame the source delivered is written, in order.

    (A starved capture thread can still miss frames at the live source itself, as
    a camera does when nobody reads it: on a loaded machine that is not the
    pipeline's doing, so the test checks what was captured, not a fixed count.)
    """
    with identity_deblurrer(delay_s=0.01) as d:
        out = []
        stats = d.stream("testsrc://?live=1&fps=100&frames=20&size=32x24", out.append, blur_map=1.0, drop="never")
    indices = [r.index for r in out]
    assert stats.dropped == 0 and len(out) == stats.captured >= 2
    assert indices == sorted(set(indices)) and indices[0] == 0 and indices[-1] <= 19


def test_realtime_file_plays_at_its_rate_and_drops_when_slow(tmp_path):
    write_video(tmp_path / "in.mkv", 10, fps=20)
    with identity_deblurrer() as d:
        t0 = time.monotonic()
        stats = d.stream(tmp_path / "in.mkv", None, blur_map=1.0, realtime=True)
        assert time.monotonic() - t0 >= 9 / 20 - 0.02 and stats.written == 10 and stats.live
    with identity_deblurrer(delay_s=0.12) as d:
        stats = d.stream(tmp_path / "in.mkv", None, blur_map=1.0, realtime=True)
    assert stats.dropped > 0 and stats.captured == 10


def test_memory_stays_bounded_on_a_long_live_stream():
    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    with identity_deblurrer(delay_s=0.004) as d:
        d.stream("testsrc://?live=1&fps=400&frames=40&size=320x240", None, blur_map=1.0)  # warm up
        before = rss_mb()
        stats = d.stream("testsrc://?live=1&fps=400&frames=300&size=320x240", None, blur_map=1.0)
        after = rss_mb()
    assert stats.peak_queue["input"] <= stats.queue_capacity["input"] == 1
    assert stats.peak_queue["output"] <= stats.queue_capacity["output"]
    assert after - before < 50, (before, after)


def test_frame_queue_drop_oldest_never_drops_the_end_item():
    from runtime.stream.pipeline import _End

    q = FrameQueue(1, drop_oldest=True)
    for i in range(5):
        assert q.put(i, lambda: False)
    q.put_end(_End("eos"))
    assert q.put(9, lambda: False)  # replaces 4, keeps the end item
    assert q.dropped == 5 and isinstance(q.get(0.01), _End) and q.get(0.01) == 9


# --- failures ---------------------------------------------------------------------------------


def test_dead_sources_fail_before_threads_start(tmp_path):
    (tmp_path / "garbage.mp4").write_bytes(os.urandom(5000))
    (tmp_path / "empty").mkdir()
    with identity_deblurrer() as d:
        for name, match in [
            (tmp_path / "missing.mp4", "not found"),
            (tmp_path / "garbage.mp4", "cannot open|decoded"),
            (tmp_path / "empty", "no images"),
            ("/dev/video99", "V4L2"),
            (0, "ambiguous"),
        ]:
            with pytest.raises(SourceError, match=match) as info:
                d.stream(name, tmp_path / "o.mkv", blur_map=1.0)
            assert str(name) in str(info.value) or name == 0
    assert not (tmp_path / "o.mkv").exists()


def test_truncated_file_warns_and_keeps_the_frames_it_has(tmp_path):
    write_video(tmp_path / "in.mkv", 20, size=(64, 48))
    data = (tmp_path / "in.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    with identity_deblurrer() as d:
        stats = d.stream(tmp_path / "cut.mkv", tmp_path / "o.mkv", blur_map=1.0)
    assert 0 < stats.written < 20 and len(read_video(tmp_path / "o.mkv")) == stats.written
    assert any("of 20 frames" in w for w in stats.warnings), stats.warnings


class StallingSource:
    """Gives ``n`` frames, then blocks in ``read()`` until closed (a camera that stopped sending)."""

    name = "stalling-camera"

    def __init__(self, n):
        self.n, self.i, self.closed = n, 0, threading.Event()
        self.maker = TestSource((32, 24), frames=-1)

    def read(self):
        if self.i < self.n:
            self.i += 1
            return self.maker.make_frame(self.i - 1)
        self.closed.wait(30)
        return None

    def close(self):
        self.closed.set()


def test_stalled_source_raises_in_the_caller_and_finalises_the_output(tmp_path):
    t0 = time.monotonic()
    with identity_deblurrer() as d:
        with pytest.raises(SourceError, match="no frame for 0.3 s") as info:
            d.stream(StallingSource(10), tmp_path / "o.mkv", blur_map=1.0, read_timeout_s=0.3, join_timeout_s=1)
    assert time.monotonic() - t0 < 5 and info.value.frame == 10 and "stalling-camera" in str(info.value)
    assert [decode_index(f) for f in read_video(tmp_path / "o.mkv")] == list(range(10))


def test_backend_error_names_the_frame_stops_threads_and_closes_the_sink(tmp_path):
    with identity_deblurrer(fail_at_call=5) as d:
        with pytest.raises(DeblurError, match="frame 5.*exploded") as info:
            d.stream("testsrc://?frames=20&size=32x24", tmp_path / "o.mkv", blur_map=1.0)
    assert info.value.frame == 5 and info.value.stats.written == 5
    assert len(read_video(tmp_path / "o.mkv")) == 5


def test_garbage_frames_from_a_user_source_are_typed_errors(tmp_path):
    with identity_deblurrer() as d:
        for frames, match in [
            ([np.zeros((8, 8, 3), np.uint8), "oops"], "expected an H×W"),
            ([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)], "size changed"),
            ([np.zeros((8, 8, 3), np.float64)], "unusable frame"),
            ([np.zeros((8, 8, 2), np.uint8)], "unusable frame"),
        ]:
            with pytest.raises(SourceError, match=match):
                d.stream(frames, None, blur_map=1.0)


def test_sink_errors(tmp_path):
    with identity_deblurrer() as d:
        with pytest.raises(SinkError, match="does not exist"):
            d.stream("testsrc://?frames=2", tmp_path / "nope" / "o.mkv", blur_map=1.0)

        def failing_sink(result):
            if result.index == 2:
                raise OSError("disk full")

        with pytest.raises(SinkError, match="frame 2.*disk full"):
            d.stream("testsrc://?frames=9&size=32x24", failing_sink, blur_map=1.0)
        with pytest.raises(SinkError, match="16-bit"):
            d.stream("testsrc://?frames=2&size=32x24&depth=16", tmp_path / "o16.avi", blur_map=1.0)


@pytest.fixture
def python_sigint_handler():
    """Python's own SIGINT handler, also where the test process was started with SIGINT ignored.

    A job started in the background by a non-interactive shell (``cmd &``, some CI
    runners) inherits SIGINT as ignored, and then ``_thread.interrupt_main()``
    does nothing: the test would wait for an interrupt that never comes.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("python_sigint_handler")
def test_keyboard_interrupt_in_the_caller_finalises_the_output(tmp_path):
    with identity_deblurrer(delay_s=0.01) as d:
        # 3,000 frames (30 s) rather than endless: a lost interrupt then fails the test instead of hanging it.
        runner = StreamRunner(d, "testsrc://?live=1&fps=100&frames=3000&size=32x24", tmp_path / "o.mkv", blur_map=1.0)
        timer = threading.Timer(0.5, lambda: __import__("_thread").interrupt_main())
        timer.start()
        with pytest.raises(KeyboardInterrupt) as info:
            runner.run()
    stats = info.value.stats
    assert stats.stopped and stats.written > 5
    assert len(read_video(tmp_path / "o.mkv")) == stats.written


@pytest.mark.slow
def test_silent_network_source_times_out():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t0 = time.monotonic()
    with identity_deblurrer() as d:
        with pytest.raises(SourceError, match="cannot open|no frame"):
            d.stream(f"udp://127.0.0.1:{port}", None, blur_map=1.0, open_timeout_s=1.0, read_timeout_s=1.0)
    assert time.monotonic() - t0 < 8


# --- camera formats -----------------------------------------------------------------------


@pytest.mark.parametrize("channels, depth", [(1, 8), (1, 16), (3, 16)])
def test_mono_and_16_bit_frames_stream_through_unchanged(tmp_path, channels, depth):
    src = f"testsrc://?frames=4&size=32x24&channels={channels}&depth={depth}"
    with identity_deblurrer() as d:
        results = list(d.frames(src, blur_map=1.0))
        for r in results:
            assert r.sharp.dtype == r.image.dtype == (np.uint16 if depth == 16 else np.uint8)
            assert r.sharp.shape == r.image.shape
            assert np.array_equal(r.sharp, r.image)
        if channels == 1 and depth == 16:
            d.stream(src, tmp_path / "o16.mkv", blur_map=1.0)
            out = read_video(tmp_path / "o16.mkv", [cv2.CAP_PROP_CONVERT_RGB, 0])
            assert len(out) == 4 and out[0].dtype == np.uint16 and np.array_equal(out[2], results[2].sharp)


def test_deblur_accepts_camera_formats():
    d = identity_deblurrer()
    rng = np.random.default_rng(0)
    radius = np.ones((12, 16), np.float32)
    for image in (
        rng.integers(0, 256, (12, 16), dtype=np.uint8),
        rng.integers(0, 65536, (12, 16, 3), dtype=np.uint16),
        rng.integers(0, 256, (12, 16, 1), dtype=np.uint8),
        rng.integers(0, 256, (12, 16, 4), dtype=np.uint8),
        rng.random((12, 16), dtype=np.float32),
    ):
        sharp = d.deblur(image, radius)
        assert sharp.shape == image.shape and sharp.dtype == image.dtype
        if image.dtype == np.float32:
            assert np.allclose(sharp, image, atol=1e-6)
        else:
            assert np.array_equal(sharp, image)


# --- GStreamer ----------------------------------------------------------------------------


@pytest.mark.skipif(
    not HAS_GST, reason="gst-launch-1.0 not installed (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-base)"
)
def test_real_gstreamer_source_and_sink(tmp_path):
    # width 66: BGR rows are padded to 68×3 bytes by GStreamer; SMPTE bars are vertical, so a wrong stride shears them
    source = "gst:videotestsrc num-buffers=20 ! video/x-raw,width=66,height=48,framerate=30/1 ! appsink"
    with identity_deblurrer() as d:
        results = list(d.frames(source, blur_map=1.0))
        assert len(results) == 20 and results[0].sharp.shape == (48, 66, 3)
        top = results[0].sharp[:30]
        assert np.array_equal(top, np.broadcast_to(top[0], top.shape))
        out = tmp_path / "o.ogg"
        stats = d.stream(
            "testsrc://?frames=12&size=66x48",
            f"gst:videoconvert ! theoraenc ! oggmux ! filesink location={out}",
            blur_map=1.0,
        )
    assert stats.written == 12 and len(read_video(out)) == 12
    with pytest.raises(SourceError, match='no element "nosuchelement"'):
        run_stream(identity_deblurrer(), "gst:nosuchelement ! appsink", None, blur_map=1.0)


def test_gst_without_gstreamer_is_a_clear_error(monkeypatch):
    import runtime.stream.sinks
    import runtime.stream.sources

    monkeypatch.setattr(runtime.stream.sources.shutil, "which", lambda name: None)
    monkeypatch.setattr(runtime.stream.sources, "cv2_has_gstreamer", lambda: False)
    monkeypatch.setattr(runtime.stream.sinks.shutil, "which", lambda name: None)
    with identity_deblurrer() as d:
        with pytest.raises(SourceError, match="gst-launch-1.0 not found"):
            d.stream("csi://0", None, blur_map=1.0)
        with pytest.raises(SinkError, match="gst-launch-1.0 not found"):
            d.stream("testsrc://?frames=1", "gst:fakesink", blur_map=1.0)


def test_stream_errors_share_a_base():
    assert all(
        issubclass(e, StreamError) and issubclass(e, RuntimeError)
        for e in (SourceError, SinkError, MapError, DeblurError)
    )


def test_h264_without_pyav_names_the_fix(tmp_path, monkeypatch):
    import sys

    import runtime.stream.sinks

    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    monkeypatch.setattr(runtime.stream.sinks, "_probe_writer", lambda path, fourcc: fourcc != "avc1")
    with identity_deblurrer() as d:
        with pytest.raises(SinkError, match=r"no H.264 encoder.*\.mkv.*svbr-net\[video\]"):
            d.stream("testsrc://?frames=2", tmp_path / "o.mp4", blur_map=1.0, codec="h264")
    assert not (tmp_path / "o.mp4").exists()


def test_h264_output_through_pyav(tmp_path):
    pytest.importorskip("av", reason="PyAV not installed (pip install 'svbr-net[video]')")
    with identity_deblurrer() as d:
        results = []
        stats = d.stream("testsrc://?frames=30&size=64x48&fps=30", tmp_path / "o.mp4", blur_map=1.0, codec="h264")
        results = list(d.frames("testsrc://?frames=30&size=64x48&fps=30", blur_map=1.0))
    out = read_video(tmp_path / "o.mp4")
    assert stats.written == 30 and len(out) == 30
    assert cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FPS) == pytest.approx(30, abs=0.01)
    error = np.mean([np.abs(a.astype(int) - r.sharp.astype(int)).mean() for a, r in zip(out, results)])
    assert error < 8, error  # lossy (crf 18) but the same pictures


def test_h264_keeps_source_timestamps_when_live_frames_drop(tmp_path):
    av = pytest.importorskip("av", reason="PyAV not installed (pip install 'svbr-net[video]')")
    with identity_deblurrer(delay_s=0.05) as d:
        stats = d.stream(
            "testsrc://?live=1&fps=30&frames=45&size=64x48", tmp_path / "o.mp4", blur_map=1.0, codec="h264"
        )
    assert stats.dropped > 0 and not stats.warnings
    with av.open(str(tmp_path / "o.mp4")) as container:
        pts = [float(f.pts * f.time_base) for f in container.decode(container.streams.video[0])]
    assert len(pts) == stats.written and pts == sorted(pts)
    assert pts[-1] == pytest.approx(44 / 30, abs=0.15)  # the source's clock, not written / fps


def test_constant_rate_file_with_drops_warns(tmp_path):
    with identity_deblurrer(delay_s=0.05) as d:
        stats = d.stream("testsrc://?live=1&fps=60&frames=30&size=32x24", tmp_path / "o.mkv", blur_map=1.0)
        assert stats.dropped > 0 and any("plays faster than real time" in w for w in stats.warnings)
        stats = d.stream("testsrc://?live=1&fps=60&frames=30&size=32x24", None, blur_map=1.0)
    assert stats.dropped > 0 and not stats.warnings  # null:// has no rate to get wrong
