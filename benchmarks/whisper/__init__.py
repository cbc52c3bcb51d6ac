"""Whisper benchmark: real-time factor of the tiny dimensions on this machine, and speech-to-transcript latency
on the data channel (see README.md)."""
