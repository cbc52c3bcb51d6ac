"""Pure rendering of a BYOCWorker's children: spec in, manifests out. No I/O here."""

from byoc_operator.render.deployment import render_deployment
from byoc_operator.render.service import render_service
from byoc_operator.render.worker import Worker

__all__ = ["Worker", "render_deployment", "render_service"]
