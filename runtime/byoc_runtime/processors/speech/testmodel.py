"""Whisper checkpoints with random weights, for tests and benchmarks (nothing is downloaded anywhere).

They are written in whisper's own checkpoint format (``{"dims": ..., "model_state_dict": ...}``) and loaded
back through ``whisper.load_model``, the path real weights take. ``TINY`` has the dimensions of the released
``tiny`` model (so it costs what tiny costs); ``MINI`` is far smaller, for tests that only need the plumbing.
Random weights make arbitrary tokens: bound the decode (``max_tokens``).
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY = {
    "n_mels": 80,
    "n_vocab": 51865,
    "n_audio_ctx": 1500,
    "n_audio_state": 384,
    "n_audio_head": 6,
    "n_audio_layer": 4,
    "n_text_ctx": 448,
    "n_text_state": 384,
    "n_text_head": 6,
    "n_text_layer": 4,
}
# The audio context (30 s of mel frames) and the multilingual vocabulary are fixed by whisper's audio code and
# tokenizer; everything else shrinks.
MINI = {**TINY, "n_audio_state": 64, "n_audio_head": 2, "n_audio_layer": 1, "n_text_state": 64, "n_text_head": 2}
MINI["n_text_layer"] = 1


def write_random_checkpoint(path: Path, dims: dict[str, int], seed: int = 0) -> Path:
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(seed)
    model = Whisper(ModelDimensions(**dims))
    with torch.no_grad():
        # whisper makes the text decoder's positional embedding with torch.empty (a real checkpoint overwrites
        # it): left so, it holds whatever that memory held, and the transcripts would differ run to run.
        model.decoder.positional_embedding.normal_(0.0, 0.02)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dict(dims), "model_state_dict": model.state_dict()}, path)
    return path
