"""Trickle transport: the worker side of Livepeer's segmented HTTP pub/sub (see shared protocols.md §2).

Subscribe (input media, control)::

    async with Subscriber(url) as sub:          # session=... to share an aiohttp.ClientSession
        async for segment in sub:                # in seq order; stops on channel closed / 404
            segment.seq                          # int, from Lp-Trickle-Seq
            async for chunk in segment.iter_chunks():   # bytes as the publisher writes them
                ...
            # or: data = await segment.read()    # whole body (bounded, 64 MiB by default)

    - starts at ``start_seq=-2`` (the segment in progress, from its start; falls back to -1, the
      live edge, on servers that reject -2); pass ``start_seq=-1`` for strictly new segments.
    - the GET for the next segment is opened as soon as a segment is handed out (as upstream).
    - 470 (fell out of the 5-segment window): jumps to Lp-Trickle-Latest (segments are skipped).
    - empty segments are skipped; a body cut off mid-way raises ``SegmentError`` from
      ``iter_chunks``/``read`` and the next ``async for`` step carries on.
    - transient failures (connection refused/reset, 5xx) are retried with exponential backoff
      (``retry=RetryPolicy(attempts=8, base_delay=0.1, max_delay=2.0)``); then ``TrickleError``.
    - moving to the next segment, ``close()`` or leaving ``async with`` releases connections.
      ``await sub.next()`` returns the next segment or None at the end.

Publish (output media, events, data)::

    async with Publisher(url, mime_type="video/mp2t") as pub:   # close() DELETEs the channel
        async with pub.segment() as w:           # one chunked POST, seq 0, 1, 2, ...
            await w.write(data)                  # streamed to subscribers as written
        await pub.write_segment(data)            # shorthand for a whole segment
    await pub.close(delete=False)                # keep the channel (it belongs to the orchestrator)

    - the POST for the next seq is pre-connected when a segment starts.
    - starting a segment retries connection failures with backoff, then ``TrickleError``.
    - an exception inside the block, or ``SegmentError`` raised by ``write``/block exit (broken
      POST, non-200), drops that segment (closed on the server with DELETE {url}/{seq}); the next
      ``segment()`` continues with the next seq.
    - ``ChannelClosed`` / ``ChannelNotFound`` (404): the channel is gone; stop publishing.

JSON channels (one message per segment)::

    pub = JsonPublisher(events_url)                   # mime_type=JSONL for the data channel
    await pub.send({"type": "status"})
    async for msg in JsonSubscriber(control_url):     # garbage is logged and skipped
        if is_keepalive(msg):                         # {"keep": "alive"} every 10 s
            continue

Everything is bounded: one segment in flight plus one pre-connected request per client, a send
queue of ``queue_size`` chunks per publisher, ``read(max_bytes)`` / ``max_message_bytes`` caps.
"""

from .errors import ChannelClosed, ChannelNotFound, SegmentError, TrickleError
from .json_channel import JSON, JSONL, JsonPublisher, JsonSubscriber, decode_segment, encode_message, is_keepalive
from .protocol import SEQ_CURRENT, SEQ_NEXT, RetryPolicy
from .publisher import Publisher, SegmentWriter
from .subscriber import Segment, Subscriber

__all__ = [
    "JSON",
    "JSONL",
    "SEQ_CURRENT",
    "SEQ_NEXT",
    "ChannelClosed",
    "ChannelNotFound",
    "JsonPublisher",
    "JsonSubscriber",
    "Publisher",
    "RetryPolicy",
    "Segment",
    "SegmentError",
    "SegmentWriter",
    "Subscriber",
    "TrickleError",
    "decode_segment",
    "encode_message",
    "is_keepalive",
]
