"""``pytrickle.utils`` stand-in."""
