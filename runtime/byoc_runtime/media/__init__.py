"""Media layer: MPEG-TS segments in, frames out, and back (PyAV). Knows nothing of HTTP or sessions."""
