"""Which pods a start should try, in order: a pure function of what the router knows about each pod."""

from __future__ import annotations

from dataclasses import dataclass

from .load import ERROR, LOADING, PodLoad


@dataclass
class Pod:
    url: str
    load: PodLoad | None = None  # None until a poll succeeds (or after it fails)
    polled_at: float = 0.0
    reserved: int = 0  # starts this router has in flight to the pod
    accepting: bool = True  # False once the pod left the source: it keeps its streams but gets no new ones
    failures: int = 0  # consecutive failed polls or forwards

    @property
    def takes_streams(self) -> bool:
        """In the source and not draining (a terminating pod may still be listed until the source catches up)."""
        return self.accepting and not (self.load is not None and self.load.draining)

    @property
    def reachable(self) -> bool:
        return self.failures == 0

    def free(self, sessions_per_pod: int) -> int | None:
        """Free slots after the starts in flight; None when the load is unknown."""
        if self.load is None:
            return None
        return max(0, self.load.free(sessions_per_pod) - self.reserved)


def start_order(pods: list[Pod], sessions_per_pod: int) -> list[str]:
    """Pods to try for a new stream, best first.

    Pods with free slots come first, the most free first (spreading streams keeps per-stream GPU time
    highest); then pods whose load is unknown (a failed poll is not proof of a full pod); then loading pods
    (a start may wait for the model). Full, erroring, draining and departing pods are left out: when nothing remains,
    the answer is 503.
    """
    free, unknown, loading = [], [], []
    for index, pod in enumerate(pods):
        if not pod.takes_streams:
            continue
        slots = pod.free(sessions_per_pod)
        if slots is None:
            unknown.append((index, pod.url))
        elif pod.load is not None and pod.load.state == LOADING:
            loading.append((index, pod.url))
        elif pod.load is not None and pod.load.state == ERROR:
            continue
        elif slots > 0:
            free.append((-slots, index, pod.url))
    return [url for *_, url in sorted(free)] + [url for _, url in unknown] + [url for _, url in loading]


def totals(pods: list[Pod], sessions_per_pod: int) -> tuple[int, int]:
    """(slots, streams) over the pods that take new streams and whose load is known."""
    slots = streams = 0
    for pod in pods:
        if pod.takes_streams and pod.load is not None and pod.load.state != ERROR:
            slots += pod.load.slots(sessions_per_pod)
            streams += pod.load.active
    return slots, streams
