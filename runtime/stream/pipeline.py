"""The three-stage stream: capture → deblur (map + network) → write, in threads joined by bounded queues.

* Input queue: ``drop="never"`` blocks the capture thread when full (files and
  image folders lose nothing); ``drop="oldest"`` keeps only the newest
  ``queue`` frames and counts every frame it throws away (live sources never
  fall behind); ``drop="auto"`` picks ``oldest`` for live sources, else ``never``.
* Output queue: always blocking, so a slow sink slows the stream, never loses frames.
* End of stream travels through the queues as a control item (never dropped)
  carrying the reason and any error, behind the frames ahead of it. Every wait
  has a timeout and checks the stop flag; a stage that fails sets it, so no
  stage waits forever.
* Shutdown (end, error, :meth:`StreamRunner.stop`, ``KeyboardInterrupt``) always
  closes the sink, so the output file is finalised; the first error is then
  raised in the caller, with the :class:`StreamStats` as ``error.stats``.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from runtime.pyramid import DEFAULT_MAX_RADIUS_PX
from runtime.stream.errors import DeblurError, MapError, SinkError, SourceError, StreamError
from runtime.stream.maps import Frame, MapProvider, as_map_provider
from runtime.stream.sinks import CallbackSink, ImageSequenceSink, NullSink, Sink, VideoFileSink, open_sink
from runtime.stream.sources import Source, open_source

DROP_POLICIES = ("auto", "never", "oldest")
FLIPS = {
    "none": None,
    "horizontal": 1,
    "vertical": 0,
    "rotate-180": -1,
    "clockwise": cv2.ROTATE_90_CLOCKWISE,
    "counterclockwise": cv2.ROTATE_90_COUNTERCLOCKWISE,
}
_POLL_S = 0.05


# --- results and statistics --------------------------------------------------


@dataclass
class Deblurred:
    """One deblurred frame. Unpacks as ``image, sharp``: ``for frame, sharp in deblurrer.frames(...)``."""

    index: int
    image: np.ndarray
    sharp: np.ndarray
    blur_map: np.ndarray
    captured_at: float
    pts_s: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.image
        yield self.sharp


class _Samples:
    """Count, mean and recent percentiles of a duration (bounded memory)."""

    def __init__(self, keep: int = 4096) -> None:
        self.count, self.total = 0, 0.0
        self.recent: collections.deque[float] = collections.deque(maxlen=keep)
        self.peak = 0.0
        self._lock = threading.Lock()  # written by one stage, summarised by another

    def add(self, seconds: float) -> None:
        with self._lock:
            self.count += 1
            self.total += seconds
            self.peak = max(self.peak, seconds)
            self.recent.append(seconds)

    def summary(self) -> dict[str, float | int]:
        with self._lock:
            if not self.count:
                return {"count": 0}
            values = np.array(self.recent, dtype=np.float64) * 1000
        return {
            "count": self.count,
            "mean_ms": round(self.total / self.count * 1000, 3),
            "p50_ms": round(float(np.percentile(values, 50)), 3),
            "p99_ms": round(float(np.percentile(values, 99)), 3),
            "max_ms": round(self.peak * 1000, 3),
        }


@dataclass
class StreamStats:
    """What a stream did. ``to_dict()`` is what ``svbr stream --stats`` writes.

    Attributes:
        captured: frames read from the source (after ``rate`` skipping).
        processed: frames deblurred.
        written: frames the sink (or the iterator's caller) received.
        dropped: frames the input queue threw away to stay current (live sources only).
        skipped: frames left out by ``rate``; discarded: queued frames thrown away at a stop.
        stages: per stage (capture, map, deblur, write) count, mean, p50, p99, max in ms.
        latency: capture → written, ms (p50, p99, max).
        peak_queue / queue_capacity: high-water mark and size of the input and output queues.
    """

    source: str = ""
    sink: str = ""
    drop: str = "never"
    live: bool = False
    captured: int = 0
    processed: int = 0
    written: int = 0
    dropped: int = 0
    skipped: int = 0
    discarded: int = 0
    loops: int = 0
    wall_s: float = 0.0
    fps: float = 0.0
    stopped: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    threads_alive: list[str] = field(default_factory=list)
    peak_queue: dict[str, int] = field(default_factory=dict)
    queue_capacity: dict[str, int] = field(default_factory=dict)
    stages: dict[str, dict[str, float | int]] = field(default_factory=dict)
    latency: dict[str, float | int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One progress/summary line."""
        text = f"frames {self.written} written, {self.dropped} dropped, {self.fps:.2f} fps"
        if self.latency.get("count"):
            text += f", latency p50 {self.latency['p50_ms']:.0f} ms p99 {self.latency['p99_ms']:.0f} ms"
        return text


# --- queues -----------------------------------------------------------------------


class _End:
    """End of stream: a control item, never dropped. ``reason``: eos, stopped, error."""

    def __init__(self, reason: str, error: BaseException | None = None) -> None:
        self.reason, self.error = reason, error


class FrameQueue:
    """A bounded queue of frames; ``drop_oldest`` makes ``put`` replace the oldest frame instead of waiting."""

    def __init__(self, capacity: int, drop_oldest: bool) -> None:
        self.capacity, self.drop_oldest = max(1, capacity), drop_oldest
        self._items: collections.deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self.dropped = 0
        self.peak = 0

    def put(self, item: Any, give_up: Callable[[], bool]) -> bool:
        """Add a frame; False if ``give_up()`` turned true while waiting for room."""
        with self._cond:
            while len(self._items) >= self.capacity:
                if self.drop_oldest:
                    for position, queued in enumerate(self._items):
                        if not isinstance(queued, _End):
                            del self._items[position]
                            self.dropped += 1
                            break
                    else:
                        break
                    continue
                if give_up():
                    return False
                self._cond.wait(_POLL_S)
            self._items.append(item)
            self.peak = max(self.peak, len(self._items))
            self._cond.notify_all()
            return True

    def put_end(self, end: _End) -> None:
        """Add the end item; it never waits and is never dropped."""
        with self._cond:
            self._items.append(end)
            self._cond.notify_all()

    def get(self, timeout: float) -> Any:
        """The next item; raises ``queue.Empty`` after ``timeout`` s."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                raise queue.Empty
            item = self._items.popleft()
            self._cond.notify_all()
            return item


# --- the runner --------------------------------------------------------------------


def _transform(image: np.ndarray, size: tuple[int | None, int | None] | None, flip: str | None) -> np.ndarray:
    code = FLIPS.get(flip or "none")
    if code is not None:
        image = cv2.rotate(image, code) if flip in ("clockwise", "counterclockwise") else cv2.flip(image, code)
    if size and (size[0] or size[1]):
        height, width = image.shape[:2]
        new_w, new_h = size
        if new_w and not new_h:
            new_h = max(1, round(height * new_w / width))
        elif new_h and not new_w:
            new_w = max(1, round(width * new_h / height))
        if (new_w, new_h) != (width, height):
            interpolation = cv2.INTER_AREA if new_w < width else cv2.INTER_LINEAR
            resized = cv2.resize(image, (int(new_w), int(new_h)), interpolation=interpolation)
            image = resized.reshape(int(new_h), int(new_w), *image.shape[2:])
    return image


class StreamRunner:
    """Runs one stream; :meth:`run` (source → sink) or iterate (source → caller). Use once.

    Args:
        deblurrer: a :class:`runtime.Deblurrer` (or anything with its ``deblur(image, map, channel_order=)``).
        source: a name (see :mod:`runtime.stream.uri`), a user object with ``read()``, or an iterable of frames.
        sink: a name, a callable, an object with ``write()``, or None (iterator form / discard).
        blur_map: see :func:`runtime.stream.maps.as_map_provider` (None = estimated per frame).
        drop: ``auto`` | ``never`` | ``oldest`` (input queue policy; see the module docstring).
        queue: input queue capacity (default 4 for ``never``, 1 for ``oldest``); output_queue: output capacity.
        open_timeout_s, read_timeout_s: how long opening and each frame may take before a ``SourceError``.
        size: (width, height) to resize frames to (one may be None: aspect kept); flip: see ``FLIPS``.
        rate: at most this many frames/s kept (the rest counted as ``skipped``).
        loop: replay a file/folder this many more times (-1 = forever); realtime: play a file at its frame rate
            as if it were live (so ``drop=auto`` drops); max_frames: stop after this many captured frames.
        map_scale: radius in px of one unit of PNG maps and map videos.
        output_fps, codec: for video-file sinks (default: the source's rate, else 30; codec by suffix).
        channel_order: ``bgr`` (OpenCV frames) or ``rgb``.
        on_progress: ``fn(stats)`` after every written frame (writer thread).
        join_timeout_s: how long shutdown waits for each thread.

    Raises (at construction, before any thread starts): SourceError, SinkError, MapError, ValueError.
    """

    def __init__(
        self,
        deblurrer: Any,
        source: Any,
        sink: Any = None,
        *,
        blur_map: Any = None,
        drop: str = "auto",
        queue: int | None = None,
        output_queue: int = 4,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        size: tuple[int | None, int | None] | None = None,
        flip: str | None = None,
        rate: float | None = None,
        loop: int = 0,
        realtime: bool = False,
        max_frames: int | None = None,
        map_scale: float | None = None,
        output_fps: float | None = None,
        codec: str = "auto",
        channel_order: str = "bgr",
        on_progress: Callable[[StreamStats], Any] | None = None,
        join_timeout_s: float = 5.0,
    ) -> None:
        if drop not in DROP_POLICIES:
            raise ValueError(f"drop must be one of {DROP_POLICIES}, got {drop!r}")
        if flip not in (None, *FLIPS):
            raise ValueError(f"flip must be one of {tuple(FLIPS)}, got {flip!r}")
        if queue is not None and queue < 1:
            raise ValueError(f"queue must be >= 1, got {queue}")
        for label, value in (("open_timeout_s", open_timeout_s), ("read_timeout_s", read_timeout_s)):
            if not value > 0:
                raise ValueError(f"{label} must be > 0, got {value}")
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.deblurrer = deblurrer
        self.source: Source = open_source(
            source,
            open_timeout_s=open_timeout_s,
            read_timeout_s=read_timeout_s,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )
        self.sink: Sink | None = None
        try:
            self.provider: MapProvider = as_map_provider(
                blur_map,
                map_scale,
                channel_order,
                max_radius_px=float(getattr(deblurrer, "max_radius_px", DEFAULT_MAX_RADIUS_PX)),
            )
            live = bool(getattr(self.source, "is_live", False)) or realtime
            if self.provider.per_frame and live:
                raise MapError(
                    f"a per-frame map sequence ({self.provider.name}) cannot be paired with a live source "
                    "(frames are dropped); use a constant, static, callable or estimated map"
                )
            self.live = live
            self.drop = ("oldest" if live else "never") if drop == "auto" else drop
            capacity = queue or (1 if self.drop == "oldest" else 4)
            fps = output_fps or rate or getattr(self.source, "fps", None)
            if sink is not None:
                self.sink = open_sink(sink, fps=fps, codec=codec)
        except BaseException:
            self.source.close()
            raise
        self.options = dict(
            size=size,
            flip=flip,
            rate=rate,
            loop=loop,
            realtime=realtime,
            max_frames=max_frames,
            read_timeout_s=read_timeout_s,
            channel_order=channel_order,
            join_timeout_s=join_timeout_s,
        )
        self.on_progress = on_progress
        self._video_sink_rate = (
            self.sink.fps if isinstance(self.sink, VideoFileSink) and not self.sink.keeps_timestamps else None
        )
        self.q_in = FrameQueue(capacity, self.drop == "oldest")
        self.q_out = FrameQueue(max(1, output_queue), False)
        self.stats = StreamStats(
            source=str(getattr(self.source, "name", "source")),
            sink=str(getattr(self.sink, "name", "iterator" if sink is None else "sink")),
            drop=self.drop,
            live=live,
            queue_capacity={"input": self.q_in.capacity, "output": self.q_out.capacity},
        )
        self._stages = {name: _Samples() for name in ("capture", "map", "deblur", "write")}
        self._latency = _Samples()
        self._stop = threading.Event()  # graceful: capture stops, queued input is discarded
        self._consumer_gone = threading.Event()  # the writer / caller stopped taking frames
        self._read_started: float | None = None
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._done: dict[str, threading.Event] = {}
        self._started = False
        self._finished = False
        self._t0 = 0.0

    # --- stages ---

    def _capture(self) -> None:
        source, opts, stats = self.source, self.options, self.stats
        end = _End("eos")
        index = 0
        loops_left = opts["loop"]
        fps = getattr(source, "fps", None)
        first_shape: tuple[int, ...] | None = None
        next_rate_t = 0.0
        played, t_play = 0, 0.0
        try:
            while not self._stop.is_set():
                if opts["max_frames"] is not None and stats.captured >= opts["max_frames"]:
                    break
                if opts["realtime"] and fps:  # play the file on its own clock, like a camera
                    if played == 0:
                        t_play = time.monotonic()
                    wait = t_play + played / fps - time.monotonic()
                    if wait > 0:
                        self._stop.wait(wait)
                    played += 1
                t_read = time.monotonic()
                self._read_started = t_read
                image = source.read()
                self._read_started = None
                t_done = time.monotonic()
                if image is None:
                    rewind = getattr(source, "rewind", None)
                    if loops_left != 0 and callable(rewind) and index > 0:
                        rewind()
                        loops_left -= 1 if loops_left > 0 else 0
                        stats.loops += 1
                        continue
                    if loops_left != 0 and not callable(rewind):
                        stats.warnings.append(f"{stats.source}: cannot loop this source")
                    break
                if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
                    raise SourceError(
                        f"read() returned {type(image).__name__}"
                        f"{getattr(image, 'shape', '')}, expected an H×W or H×W×C image array",
                        source=stats.source,
                        frame=index,
                    )
                if first_shape is None:
                    first_shape = image.shape
                elif image.shape != first_shape:
                    raise SourceError(
                        f"frame size changed from {first_shape} to {image.shape}", source=stats.source, frame=index
                    )
                if opts["rate"]:
                    stamp = (index / fps) if (fps and not self.live) else (t_done - self._t0)
                    if stamp + 1e-9 < next_rate_t:
                        stats.skipped += 1
                        index += 1
                        continue
                    next_rate_t = (
                        max(next_rate_t + 1.0 / opts["rate"], stamp) if next_rate_t else stamp + 1.0 / opts["rate"]
                    )
                source_size = image.shape[:2]
                if not image.flags.writeable or not image.flags.c_contiguous:
                    image = np.ascontiguousarray(image).copy()
                image = _transform(image, opts["size"], opts["flip"])
                captured_at = time.monotonic()
                frame = Frame(
                    index, image, captured_at, index / fps if fps else captured_at - self._t0, source_size, stats.source
                )
                self._stages["capture"].add(t_done - t_read)
                stats.captured += 1
                index += 1
                if not self.q_in.put(frame, self._stop.is_set):
                    break
                stats.dropped = self.q_in.dropped
                stats.peak_queue["input"] = self.q_in.peak
        except StreamError as error:
            end = _End("error", error)
        except Exception as error:  # noqa: BLE001 - user sources: report as a typed error
            wrapped = SourceError(f"{type(error).__name__}: {error}", source=stats.source, frame=index)
            wrapped.__cause__ = error
            end = _End("error", wrapped)
        finally:
            self._read_started = None
            if end.reason == "eos" and self._stop.is_set():
                end = _End("stopped")
            for warning in getattr(source, "warnings", []):
                if warning not in stats.warnings:
                    stats.warnings.append(warning)
            self.q_in.put_end(end)

    def _infer(self) -> None:
        stats, opts = self.stats, self.options
        end: _End | None = None
        next_index = 0
        try:
            while end is None:
                try:
                    item = self.q_in.get(_POLL_S)
                except queue.Empty:
                    started = self._read_started
                    if started is not None and time.monotonic() - started > opts["read_timeout_s"] + 0.25:
                        raise SourceError(
                            f"no frame for {opts['read_timeout_s']:g} s (source stalled)",
                            source=stats.source,
                            frame=next_index,
                        ) from None
                    if self._consumer_gone.is_set():
                        end = _End("stopped")
                    continue
                if isinstance(item, _End):
                    end = item
                    break
                if self._stop.is_set():
                    stats.discarded += 1
                    continue
                frame: Frame = item
                next_index = frame.index + 1
                t0 = time.monotonic()
                radius = self.provider(frame)
                t1 = time.monotonic()
                try:
                    sharp = self.deblurrer.deblur(frame.image, radius, channel_order=opts["channel_order"])
                except ValueError as error:
                    raise SourceError(
                        f"unusable frame ({frame.image.shape} {frame.image.dtype}): {error}",
                        source=stats.source,
                        frame=frame.index,
                    ) from error
                except StreamError:
                    raise
                except Exception as error:  # noqa: BLE001 - backend failures
                    raise DeblurError(
                        f"deblurring failed: {type(error).__name__}: {error}", source=stats.source, frame=frame.index
                    ) from error
                t2 = time.monotonic()
                self._stages["map"].add(t1 - t0)
                self._stages["deblur"].add(t2 - t1)
                stats.processed += 1
                result = Deblurred(
                    frame.index,
                    frame.image,
                    sharp,
                    radius,
                    frame.captured_at,
                    frame.pts_s,
                    {"map": (t1 - t0) * 1000, "deblur": (t2 - t1) * 1000},
                )
                if not self.q_out.put(result, self._consumer_gone.is_set):
                    end = _End("stopped")
                stats.peak_queue["output"] = self.q_out.peak
                stats.dropped = self.q_in.dropped
        except BaseException as error:  # noqa: BLE001 - everything travels as an end item
            if not isinstance(error, StreamError):
                wrapped = DeblurError(f"{type(error).__name__}: {error}", source=stats.source, frame=next_index)
                wrapped.__cause__ = error
                error = wrapped
            end = _End("error", error)
            self._stop.set()
        finally:
            if end is None:
                end = _End("stopped")
            if end.reason == "error":
                self._stop.set()
            # drain whatever the capture stage still puts (it stops at the stop flag)
            self.q_out.put_end(end)

    def _write_one(self, result: Deblurred) -> None:
        sink = self.sink
        t0 = time.monotonic()
        try:
            if isinstance(sink, CallbackSink):
                sink.fn(result)
            elif isinstance(sink, ImageSequenceSink):
                sink.write(result.sharp, result.index)
            elif isinstance(sink, VideoFileSink):
                sink.write(result.sharp, result.pts_s)
            elif sink is not None:
                sink.write(result.sharp)
        except StreamError:
            raise
        except Exception as error:  # noqa: BLE001
            raise SinkError(
                f"writing failed: {type(error).__name__}: {error}", source=self.stats.sink, frame=result.index
            ) from error
        done = time.monotonic()
        self._stages["write"].add(done - t0)
        self._latency.add(done - result.captured_at)
        self.stats.written += 1
        if self.on_progress is not None:
            self._refresh()
            self.on_progress(self.stats)

    def _writer(self) -> None:
        end: _End | None = None
        try:
            while end is None:
                try:
                    item = self.q_out.get(_POLL_S)
                except queue.Empty:
                    continue
                if isinstance(item, _End):
                    end = item
                    break
                self._write_one(item)
        except BaseException as error:  # noqa: BLE001
            if not isinstance(error, StreamError):
                wrapped = SinkError(f"{type(error).__name__}: {error}", source=self.stats.sink)
                wrapped.__cause__ = error
                error = wrapped
            self._errors.append(error)
            self._consumer_gone.set()
            self._stop.set()
        finally:
            if end is not None and end.error is not None:
                self._errors.insert(0, end.error)
            if end is not None and end.reason == "stopped":
                self.stats.stopped = True
            self._close_sink()

    def _close_sink(self) -> None:
        sink, self.sink = self.sink, None
        if sink is None:
            return
        try:
            sink.close()
        except Exception as error:  # noqa: BLE001
            self._errors.append(
                error
                if isinstance(error, StreamError)
                else SinkError(f"closing failed: {type(error).__name__}: {error}", source=self.stats.sink)
            )

    # --- control ---

    def start(self) -> None:
        if self._started:
            raise RuntimeError("a StreamRunner runs once")
        self._started = True
        self._t0 = time.monotonic()
        for target, name in ((self._capture, "svbr-capture"), (self._infer, "svbr-deblur")):
            self._spawn(target, name)

    def _spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        # Completion is tracked with events, not Thread.join/is_alive: a KeyboardInterrupt that lands
        # inside Thread.join() can leave the thread marked as stopped while it still runs (CPython).
        done = threading.Event()
        self._done[name] = done

        def body() -> None:
            try:
                target()
            finally:
                done.set()

        thread = threading.Thread(target=body, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def stop(self) -> None:
        """Ask the stream to end: capture stops, queued input is discarded, written output is finalised."""
        self._stop.set()

    def _refresh(self) -> None:
        stats = self.stats
        stats.wall_s = round(time.monotonic() - self._t0, 4)
        stats.fps = round(stats.written / stats.wall_s, 3) if stats.wall_s > 0 else 0.0
        stats.dropped = self.q_in.dropped
        stats.peak_queue = {"input": self.q_in.peak, "output": self.q_out.peak}
        stats.stages = {name: samples.summary() for name, samples in self._stages.items()}
        stats.latency = self._latency.summary()

    def _shutdown(self) -> None:
        """Stop and join every thread (bounded), close the source and map, fill in the stats."""
        if self._finished:
            return
        self._finished = True
        self._stop.set()
        self._consumer_gone.set()
        timeout = self.options["join_timeout_s"]
        for name, done in self._done.items():
            if not done.wait(timeout) and name == "svbr-capture":
                # a read() stuck in a user object or a pipe: closing the source is what unblocks it
                self._close_source()
                done.wait(timeout)
        for thread in self._threads:
            if self._done[thread.name].is_set():
                thread.join(1.0)
        self._close_source()
        self.provider.close()
        self._refresh()
        self.stats.threads_alive = [name for name, done in self._done.items() if not done.is_set()]
        if self.stats.dropped and self._video_sink_rate is not None:
            self.stats.warnings.append(
                f"{self.stats.dropped} frames were dropped but {self.stats.sink} has a constant rate "
                f"({self._video_sink_rate:g} fps), so it plays faster than real time; use --output-codec h264 "
                "(PyAV keeps timestamps) or --drop never"
            )
        if self._errors:
            self.stats.error = str(self._errors[0])

    def _close_source(self) -> None:
        source, self._source_open = (self.source if getattr(self, "_source_open", True) else None), False
        if source is not None:
            try:
                source.close()
            except Exception as error:  # noqa: BLE001
                self.stats.warnings.append(f"closing the source failed: {type(error).__name__}: {error}")

    def _raise_first_error(self) -> None:
        if self._errors:
            error = self._errors[0]
            error.stats = self.stats  # type: ignore[attr-defined]
            raise error

    def run(self) -> StreamStats:
        """Source → deblur → sink until the end; returns the stats, or raises the first :class:`StreamError`.

        ``KeyboardInterrupt`` stops the stream, finalises the output and is re-raised (with ``.stats``).
        """
        if self.sink is None:
            self.sink = NullSink()
            self.stats.sink = "null://"
        self.start()
        self._spawn(self._writer, "svbr-write")
        written = self._done["svbr-write"]
        try:
            while not written.wait(0.1):
                pass
        except KeyboardInterrupt as interrupt:
            self.stop()
            self.stats.stopped = True
            try:
                written.wait(self.options["join_timeout_s"] + self.options["read_timeout_s"])
            finally:
                self._shutdown()
            interrupt.stats = self.stats  # type: ignore[attr-defined]
            raise
        self._shutdown()
        self._raise_first_error()
        return self.stats

    def __iter__(self) -> Iterator[Deblurred]:
        """Deblurred frames in order (the caller is the third stage); leaving the loop stops the stream."""
        if self.sink is not None:
            raise RuntimeError("iterate a StreamRunner made without a sink, or call run()")
        self.start()
        try:
            while True:
                try:
                    item = self.q_out.get(_POLL_S)
                except queue.Empty:
                    continue
                if isinstance(item, _End):
                    if item.error is not None:
                        self._errors.insert(0, item.error)
                    if item.reason == "stopped":
                        self.stats.stopped = True
                    break
                self._latency.add(time.monotonic() - item.captured_at)
                self.stats.written += 1
                yield item
        finally:
            self._shutdown()
        self._raise_first_error()

    def close(self) -> None:
        """Stop and release everything (safe to call at any time, also before start)."""
        if not self._started:
            self._finished = True
            self._close_sink()
            self._close_source()
            self.provider.close()
            return
        self._shutdown()
        self._close_sink()

    def __enter__(self) -> StreamRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_stream(deblurrer: Any, source: Any, sink: Any, *, blur_map: Any = None, **options: Any) -> StreamStats:
    """Blocking source → sink stream; see :class:`StreamRunner` for the options."""
    return StreamRunner(deblurrer, source, sink, blur_map=blur_map, **options).run()
