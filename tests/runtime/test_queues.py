"""The drop-oldest queue between pipeline stages."""

from __future__ import annotations

from byoc_runtime.queues import CLOSED, DropQueue


async def test_a_full_queue_evicts_its_oldest_droppable_item_and_keeps_the_others() -> None:
    queue: DropQueue[str] = DropQueue(2, droppable=lambda item: item.startswith("v"))
    for item in ("a1", "v1", "a2", "v2"):
        assert queue.put(item) is None
    assert queue.put("v3") == "v1" and queue.dropped == 1
    assert [await queue.get() for _ in range(4)] == ["a1", "a2", "v2", "v3"]


async def test_take_ready_empties_the_queue_in_order_and_frees_its_room() -> None:
    queue: DropQueue[int] = DropQueue(3)
    for item in range(3):
        queue.put(item)
    assert queue.take_ready() == [0, 1, 2] and len(queue) == 0 and queue.take_ready() == []
    # The room is back: three more fit without an eviction.
    assert [queue.put(item) for item in (3, 4, 5)] == [None, None, None] and queue.dropped == 0
    queue.close()
    assert queue.take_ready() == [3, 4, 5] and await queue.get() is CLOSED
