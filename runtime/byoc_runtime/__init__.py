"""PyTrickle-compatible live video worker runtime for Livepeer BYOC."""

__version__ = "0.1.0"
