"""``pytrickle.version`` stand-in: the pytrickle release whose API this shim provides."""

__version__ = "0.1.8+byoc-runtime"
VERSION = __version__

__all__ = ["VERSION", "__version__"]
