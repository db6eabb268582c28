"""Typed stream errors: every failure of a stream names where it happened.

All derive from :class:`StreamError` (a ``RuntimeError``), so one ``except``
catches every stream failure; the CLI prints them in one line.
"""

from __future__ import annotations


class StreamError(RuntimeError):
    """A stream failed. ``source`` names the input, ``frame`` the source frame index (or ``None``)."""

    def __init__(self, message: str, *, source: str | None = None, frame: int | None = None) -> None:
        parts = []
        if source is not None:
            parts.append(source)
        if frame is not None:
            parts.append(f"frame {frame}")
        prefix = f"{', '.join(parts)}: " if parts else ""
        super().__init__(prefix + message)
        self.source = source
        self.frame = frame
        self.detail = message


class SourceError(StreamError):
    """The source cannot be opened, read, or stalled / ended abnormally."""


class SinkError(StreamError):
    """The sink cannot be opened or written."""


class MapError(StreamError):
    """No valid blur map for a frame (missing, exhausted, wrong size, NaN, negative)."""


class DeblurError(StreamError):
    """The deblurrer (backend) failed on a frame."""
