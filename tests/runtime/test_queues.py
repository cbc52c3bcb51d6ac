"""The drop-oldest queue between pipeline stages."""

from __future__ import annotations

from byoc_runtime.queues import CLOSED, DropQueue


async def test_a_full_queue_evicts_its_oldest_droppable_item_and_keeps_the_others() -> None:
    queue: DropQueue[str] = DropQueue(2, droppable=lambda item: item.startswith("v"))
    assert [queue.put(item) for item in ("a1", "v1", "a2", "v2")] == [0, 0, 0, 0]
    assert queue.put("v3") == 1 and queue.dropped == 1
    assert [await queue.get() for _ in range(4)] == ["a1", "a2", "v2", "v3"]


async def test_take_ready_empties_the_queue_in_order_and_frees_its_room() -> None:
    queue: DropQueue[int] = DropQueue(3)
    for item in range(3):
        queue.put(item)
    assert queue.take_ready() == [0, 1, 2] and len(queue) == 0 and queue.take_ready() == []
    # The room is back: three more fit without an eviction.
    assert [queue.put(item) for item in (3, 4, 5)] == [0, 0, 0] and queue.dropped == 0
    queue.close()
    assert queue.take_ready() == [3, 4, 5] and await queue.get() is CLOSED


async def test_with_max_wait_a_burst_is_kept_and_only_what_waited_too_long_goes() -> None:
    queue: DropQueue[int] = DropQueue(8, max_wait=0.1)
    # Four frames decoded at once (B-frames reordered): the consumer gets all of them.
    assert [queue.put(i, now=10.0) for i in range(4)] == [0, 0, 0, 0]
    # The consumer took one and stalled; the next frame comes 0.15 s later: the three that waited go.
    assert await queue.get() == 0
    assert queue.put(4, now=10.15) == 3 and queue.dropped == 3
    assert queue.put(5, now=10.2) == 0  # 4 has waited 0.05 s only
    assert [await queue.get(), await queue.get()] == [4, 5]
    # maxsize still bounds it when the items come faster than they age.
    assert sum(queue.put(i, now=11.0) for i in range(10)) == 2 and len(queue) == 8
