"""The media stages of one stream and the queues between them, run as one task group.

    ingest --DecodedVideo--> jitter buffer --> DecodedFrames --> processing --EncodeItem--> encode lane
      --PublishPart--> publish            (decoded audio skips the jitter buffer)

Each stage is its own object and talks to the next only through its queue or callback, so a stage can be
rebuilt (decode as soon as an access unit is in, convert lazily) without touching the others. A failure in any
stage cancels the rest; the session reports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from byoc_edge.schema import StreamStartRequest

from .context import StageContext
from .ingest import Ingest
from .items import encode_queue, is_video
from .output import EncodeLane, Publish
from .pacing import JitterBuffer
from .params import SessionParams
from .processing import DecodedFrames, Processing
from .processor import ProcessorLink


class Pipeline:
    def __init__(
        self,
        ctx: StageContext,
        request: StreamStartRequest,
        processor: ProcessorLink,
        params: SessionParams,
        delete_output: Callable[[bool], bool],
    ) -> None:
        self._ctx = ctx
        self._request = request
        self.decoded = DecodedFrames(ctx)
        encoding = encode_queue(ctx.settings.encode_queue)
        # Catch up only while the processor waits for a frame and the encoder is not the slower stage (it would
        # let the frames in flight go first).
        self._jitter = JitterBuffer(
            self.decoded.put_video,
            lambda: self.decoded.video_wanted and encoding.count(is_video) <= 1,
            ctx.settings.catch_up_s,
        )
        self._ingest = Ingest(ctx, params.limiter, self._jitter.push, self.decoded.put_audio)
        self._processing = Processing(ctx, processor, params, self.decoded, encoding, self._jitter.catch_up)
        self._encode = EncodeLane(
            ctx, encoding, self._jitter.catch_up, lambda: self._ingest.has_audio, bool(request.publish_url)
        )
        self._publish = Publish(ctx, self._encode.parts, delete_output)

    async def run(self, http: aiohttp.ClientSession) -> str | None:
        """Until the input ended and everything drained; returns why, when it is not that the input ended."""
        async with asyncio.TaskGroup() as tg:
            ingest = tg.create_task(self._read_input(http), name="ingest")
            tg.create_task(self._processing.run_video(), name="process-video")
            tg.create_task(self._processing.run_audio(), name="process-audio")
            tg.create_task(self._encode.run(), name="encode")
            tg.create_task(self._publish.run(self._request.publish_url, http), name="publish")
        return ingest.result()

    async def _read_input(self, http: aiohttp.ClientSession) -> str | None:
        try:
            url = self._request.subscribe_url
            if url:
                await self._ingest.read(url, http)
                await self._jitter.flush()
                return None
            # No input: the stream ends when the orchestrator closes its control channel (it always makes one).
            # With no control channel either nothing would ever end it but a stop that may not come.
            if self._request.control_url:
                await asyncio.Event().wait()
            limit = self._ctx.settings.unattended_limit_s
            await asyncio.sleep(limit)
            return f"no input and no control channel: ended after {limit:g}s"
        finally:
            self.decoded.close()

    def abort(self) -> None:
        """The session is ending: unblock a decode thread waiting for bytes."""
        self._ingest.abort()

    def close(self) -> None:
        """Release the decode and encode threads."""
        self._ingest.close()
        self._encode.close()
