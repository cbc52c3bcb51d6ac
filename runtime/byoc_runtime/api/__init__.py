"""REST layer: the worker contract the orchestrator calls (protocols.md section 1), over aiohttp."""
