"""The gateway-inputs benchmark replays FFmpeg's H.264 output rule to split added latency at the moment the
decoder may release a frame; the replay must agree with the real decoder."""

from __future__ import annotations

import io

import av
from byoc_runtime.media.decode import SegmentDecoder, SegmentReader
from byoc_testenv.devstream.channels import InputLog
from byoc_testenv.devstream.gateway_media import GatewaySpec, gateway_stream

from benchmarks.runtime.inputs import reorder_release


class _Counting(SegmentReader):
    """Feeds one frame's chunk per read and counts the chunks fed."""

    def __init__(self, chunks: list[bytes], fed: list[int]) -> None:
        super().__init__()
        self._left, self._fed = chunks, fed

    def read_chunk(self) -> bytes:
        if self._left:
            self._fed[0] += 1
            self.feed(self._left.pop(0))
        else:
            self.finish()
        return super().read_chunk()


def test_the_replayed_release_is_when_the_real_decoder_lets_each_frame_out() -> None:
    stream = gateway_stream(GatewaySpec(width=320, height=240, fps=30, seconds=2.0, bframes=3, audio=None))
    decoder = SegmentDecoder()
    fed = [0]
    out_after: dict[int, int] = {}  # pts -> how many chunks had been fed when it came out
    for pieces in stream.pieces:
        decoder.decode(_Counting(list(pieces), fed), lambda f: out_after.setdefault(f.pts, fed[0]))
    sent = InputLog()
    index = 0
    for segment in stream.segments:
        with av.open(io.BytesIO(segment), format="mpegts") as container:
            for packet in container.demux(video=0):
                if packet.size:
                    index += 1
                    sent.frame_sent[packet.pts] = float(index)  # "sent" with chunk `index`
    released = reorder_release(sent, depth=2)
    # A frame's end is seen with its own chunk (or, 1 in 184, with the next): the decoder lets it out then.
    agree = [pts for pts, at in released.items() if out_after.get(pts) in (at, at + 1)]
    assert len(agree) >= 0.95 * len(released) and len(released) == len(sent.frame_sent) - 2
    assert any(released[pts] > sent.frame_sent[pts] for pts in released)  # B-frames are held
    assert reorder_release(sent, depth=0) == sent.frame_sent  # no B-frames: released as sent
