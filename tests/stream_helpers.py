"""Helpers for the stream tests: backends behind the real Deblurrer, and videos whose frames carry their index."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from runtime.backends import Backend
from runtime.deblurrer import Deblurrer
from runtime.stream import TestSource


class IdentityBackend(Backend):
    """Returns its input: uint8 -> /255 -> ×255 is exact, so outputs equal inputs bit for bit."""

    name, device, precision, preferred_batch_size = "identity", "cpu", "fp32", 4

    def __init__(self, delay_s: float = 0.0, fail_at_call: int | None = None) -> None:
        self.model_path, self.metadata = Path("identity"), {}
        self.delay_s, self.fail_at_call = delay_s, fail_at_call
        self.calls = 0
        self.lock = threading.Lock()

    def run(self, image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        with self.lock:
            call = self.calls
            self.calls += 1
        if self.fail_at_call is not None and call >= self.fail_at_call:
            raise RuntimeError(f"backend exploded at call {call}")
        if self.delay_s:
            time.sleep(self.delay_s)
        return image.copy()


def identity_deblurrer(delay_s: float = 0.0, fail_at_call: int | None = None) -> Deblurrer:
    """One backend call per frame (full frame, no halo)."""
    return Deblurrer(backend=IdentityBackend(delay_s, fail_at_call), tile=None, halo=0)


def write_video(
    path: Path, n: int, size: tuple[int, int] = (64, 48), fps: float = 25.0, fourcc: str = "FFV1", start: int = 0
) -> list[np.ndarray]:
    """Frames ``start..start+n-1`` of ``testsrc`` (each encodes its index) written losslessly; returns them."""
    source = TestSource(size, fps, frames=-1)
    frames = [source.make_frame(i) for i in range(start, start + n)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), path
    for frame in frames:
        writer.write(frame)
    writer.release()
    return frames


def read_video(path: Path, flags: list[int] | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, flags or [])
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def stream_threads_alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("svbr-") and t.is_alive()]
