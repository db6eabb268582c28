"""Camera-pipeline streaming: frames from a source, through the deblurrer, to a sink. Never imports torch.

    from runtime import Deblurrer
    with Deblurrer() as d:
        stats = d.stream("in.mp4", "sharp.mkv", blur_map="lens_map.npy")     # -> StreamStats
        with d.frames("testsrc://?live=1", blur_map=2.0) as frames:           # iterator form
            for image, sharp in frames:
                ...

See :mod:`runtime.stream.uri` for the source/sink names, :mod:`runtime.stream.maps`
for the blur-map forms and :mod:`runtime.stream.pipeline` for the threads and queues.
"""

from runtime.stream.errors import DeblurError, MapError, SinkError, SourceError, StreamError
from runtime.stream.maps import (
    CallableMap,
    ConstantMap,
    EstimatedMap,
    Frame,
    MapArray,
    MapFolder,
    MapProvider,
    MapVideo,
    StaticMap,
    as_map_provider,
    estimator_available,
    rescale_map,
)
from runtime.stream.pipeline import Deblurred, FrameQueue, StreamRunner, StreamStats, run_stream
from runtime.stream.sinks import CallbackSink, GstPipeSink, ImageSequenceSink, NullSink, Sink, VideoFileSink, open_sink
from runtime.stream.sources import (
    CaptureSource,
    GstPipeSource,
    ImageSequenceSource,
    Source,
    TestSource,
    decode_index,
    encode_index,
    open_source,
)
from runtime.stream.uri import Uri, UriError, parse_sink, parse_source

__all__ = [
    "CallableMap",
    "CallbackSink",
    "CaptureSource",
    "ConstantMap",
    "DeblurError",
    "Deblurred",
    "EstimatedMap",
    "Frame",
    "FrameQueue",
    "GstPipeSink",
    "GstPipeSource",
    "ImageSequenceSink",
    "ImageSequenceSource",
    "MapArray",
    "MapError",
    "MapFolder",
    "MapProvider",
    "MapVideo",
    "NullSink",
    "Sink",
    "SinkError",
    "Source",
    "SourceError",
    "StaticMap",
    "StreamError",
    "StreamRunner",
    "StreamStats",
    "TestSource",
    "Uri",
    "UriError",
    "VideoFileSink",
    "as_map_provider",
    "decode_index",
    "encode_index",
    "estimator_available",
    "open_sink",
    "open_source",
    "parse_sink",
    "parse_source",
    "rescale_map",
    "run_stream",
]
