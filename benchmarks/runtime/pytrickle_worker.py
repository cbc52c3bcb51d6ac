"""A PyTrickle 0.1.6 passthrough worker written the way Livepeer's BYOC guide shows (run in the PyTrickle venv).

    python pytrickle_worker.py --port 8001

The guide's ``initialize()`` is ``load_model()`` in 0.1.6 and its ``await processor.start()`` does not exist
there, so neither appears; everything else is the guide's shape: a ``FrameProcessor`` subclass that returns
each frame, served by ``StreamServer``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from pytrickle import FrameProcessor, StreamServer
from pytrickle.frames import AudioFrame, VideoFrame


class PassthroughProcessor(FrameProcessor):
    async def load_model(self, **kwargs: Any) -> None:
        pass

    async def process_video_async(self, frame: VideoFrame) -> VideoFrame | None:
        return frame

    async def process_audio_async(self, frame: AudioFrame) -> list[AudioFrame] | None:
        return [frame]

    async def update_params(self, params: dict[str, Any]) -> None:
        pass


async def serve(port: int) -> None:
    server = StreamServer(
        frame_processor=PassthroughProcessor(), port=port, host="127.0.0.1", capability_name="passthrough"
    )
    await server.run_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
