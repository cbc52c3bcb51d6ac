"""Stand-in for the ``pytrickle`` package (reached as ``pytrickle`` via ``install_pytrickle_alias``).

Provides the names processor modules import from pytrickle v0.1.6 (``pytrickle/__init__.py``), backed by this
runtime. Transport classes (``TrickleClient``, ``TricklePublisher``, ...) are deliberately absent: processors
never touch the transport.
"""

from byoc_runtime.frames import AudioFrame, AudioOutput, VideoFrame, VideoOutput

from . import api
from .frame_processor import FrameProcessor
from .server import StreamServer
from .stream_processor import StreamProcessor, VideoProcessingResult

__version__ = "0.1.6+byoc-runtime"

__all__ = [
    "AudioFrame",
    "AudioOutput",
    "FrameProcessor",
    "StreamProcessor",
    "StreamServer",
    "VideoFrame",
    "VideoOutput",
    "VideoProcessingResult",
    "__version__",
    "api",
]
