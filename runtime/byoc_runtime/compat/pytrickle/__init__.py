"""Stand-in for the ``pytrickle`` package (reached as ``pytrickle`` via ``install_pytrickle_alias``).

Every public name of pytrickle v0.1.8 ``pytrickle/__init__.py``, and the submodules processors import
(``frames``, ``frame_processor``, ``stream_processor``, ``server``, ``decorators``, ``frame_skipper``,
``frame_overlay``, ``fps_meter``, ``state``, ``base``, ``client``, ``protocol``, ``publisher``,
``subscriber``, ``manager``, ``stream_handler``, ``utils.register``, ``api``, ``version``), implemented on this
runtime: the transport classes run over its trickle client and its session pipeline.
"""

from byoc_runtime.frames import AudioFrame, AudioOutput, VideoFrame, VideoOutput

from . import api
from .base import ComponentState, ErrorCallback, TrickleComponent
from .client import TrickleClient
from .fps_meter import FPSMeter
from .frame_overlay import OverlayConfig, OverlayController, OverlayMode
from .frame_processor import FrameProcessor
from .frame_skipper import FrameSkipConfig
from .frames import FrameBuffer
from .manager import BaseStreamManager, StreamHandler, TrickleStreamManager
from .protocol import TrickleProtocol
from .publisher import TricklePublisher
from .server import StreamServer
from .state import StreamState
from .stream_handler import TrickleStreamHandler
from .stream_processor import StreamProcessor, VideoProcessingResult
from .subscriber import TrickleSubscriber
from .utils.register import RegisterCapability
from .version import __version__

__all__ = [
    "AudioFrame",
    "AudioOutput",
    "BaseStreamManager",
    "ComponentState",
    "ErrorCallback",
    "FPSMeter",
    "FrameBuffer",
    "FrameProcessor",
    "FrameSkipConfig",
    "OverlayConfig",
    "OverlayController",
    "OverlayMode",
    "RegisterCapability",
    "StreamHandler",
    "StreamProcessor",
    "StreamServer",
    "StreamState",
    "TrickleClient",
    "TrickleComponent",
    "TrickleProtocol",
    "TricklePublisher",
    "TrickleStreamHandler",
    "TrickleStreamManager",
    "TrickleSubscriber",
    "VideoFrame",
    "VideoOutput",
    "VideoProcessingResult",
    "__version__",
    "api",
]
