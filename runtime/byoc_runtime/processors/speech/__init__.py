"""``whisper``: live speech-to-text on openai-whisper, transcripts on the stream's data channel.

``options`` holds what the worker's owner and each stream may set, ``audio`` turns the stream's audio into
16 kHz mono on the stream's clock, ``windows`` decides what of each transcribed window to publish, ``model``
finds, loads and shares the checkpoints, and ``processor`` ties them to a session.
"""
