"""The runner's send queue: what is ready goes as one batch, within its limits; large messages go alone."""

from __future__ import annotations

import asyncio

from dtask_runner.send_queue import ALONE_BYTES, SendQueue


def batches(sizes: list[int], **limits: int) -> list[list[int]]:
    """The batches take() hands out for messages of these sizes, all queued before the first take."""

    async def main() -> list[list[int]]:
        q: SendQueue[int] = SendQueue(**limits)
        for i, size in enumerate(sizes):
            q.put(i, 1, size)
        out = []
        while len(q):
            out.append([item.msg for item in await asyncio.wait_for(q.take(), 5)])
        return out

    return asyncio.run(main())


def test_small_messages_ready_together_go_as_one_batch_in_order() -> None:
    assert batches([100] * 5) == [[0, 1, 2, 3, 4]]


def test_a_large_message_goes_alone_and_the_batch_before_it_ends_there() -> None:
    big = ALONE_BYTES
    assert batches([100, 200, big, 100, big, big, 50]) == [[0, 1], [2], [3], [4], [5], [6]]


def test_batches_keep_to_their_count_and_byte_limits() -> None:
    assert batches([10] * 5, max_messages=2) == [[0, 1], [2, 3], [4]]
    assert batches([400, 400, 400], max_bytes=1000, alone_bytes=10_000) == [[0, 1], [2]]
