"""One live stream: trickle in -> decode -> process -> encode -> trickle out, plus its control/events/data.

Each stage hands on through a bounded queue, and the heavy work happens off the event loop:

    ingest (loop: trickle Subscriber) --chunks--> decode lane (thread: SegmentDecoder)       ``ingest``
      --DecodedVideo--> jitter buffer (paced release, catch-up)                             ``pacing``
      --> video/audio DropQueues (drop oldest: latency stays bounded when processing lags)  ``processing``
      --> process (processor host thread: scale/crop to tensor + process_video_async)       ``processing``
      --EncodeItem--> encode DropQueue --> encode lane (thread: tensor -> uint8 -> H.264/Opus -> MPEG-TS)
      --PublishPart--> publish queue (bounded, waits) --> publish (loop: one POST per segment) ``output``

Beside them run the side channels: events and heartbeats (``events_out``), control (``control_in``) and data
(``data_out``). ``lifecycle.Session`` owns one stream: it runs the stages (``pipeline``) and the side channels;
``items`` holds what the stages hand each other, ``processor`` the rule for processor calls, ``params`` what the
stream runs with and what of that it shows.
Contract details come from pytrickle ``client.py`` / ``protocol.py`` (v0.1.6) and go-livepeer
``byoc/trickle.go``; see the modules named in each.
"""

from .lifecycle import Session, SessionState
from .processing import normalize_audio_result, normalize_video_result
from .settings import OutputTooLarge, SessionFailure, SessionSettings

__all__ = [
    "OutputTooLarge",
    "Session",
    "SessionFailure",
    "SessionSettings",
    "SessionState",
    "normalize_audio_result",
    "normalize_video_result",
]
