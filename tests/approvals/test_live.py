"""The publisher thread: what a worker's committed events cost Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import redis
from channels_redis.core import RedisChannelLayer

from agentos_site.settings import redis_channel_layer
from approvals import live
from tests.support.shared_redis import REDIS_URL, needs_redis

pytestmark = [
    pytest.mark.asyncio,
    needs_redis,
]


@pytest_asyncio.fixture
async def layer() -> AsyncIterator[RedisChannelLayer]:
    """A Redis layer under a prefix of its own whose `group_send` calls are listed."""
    prefix = f"agentos-test-{uuid.uuid4().hex[:12]}"  # other test runs share this Redis
    layer = RedisChannelLayer(**redis_channel_layer(REDIS_URL, prefix)["CONFIG"])
    layer.sent = []  # type: ignore[attr-defined]
    group_send = layer.group_send

    async def listed(group: str, message: dict) -> None:
        layer.sent.append((group, message["n"]))  # type: ignore[attr-defined]
        await group_send(group, message)

    layer.group_send = listed  # type: ignore[method-assign]
    yield layer
    # Not layer.flush(): it would close the publisher thread's pool from this loop.
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def message(n: int) -> dict[str, Any]:
    return {"type": "run.event", "n": n}


async def test_the_publisher_sends_only_to_groups_someone_is_in(layer) -> None:
    """A run nobody watches costs no group_send; a watched run gets each event, in order."""
    channel = await layer.new_channel()
    await layer.group_add("run.1", channel)
    publisher = live._Publisher(layer)
    publisher.put([("run.1", message(1)), (live.RUNS_GROUP, message(2))])
    publisher.put([("run.2", message(3)), ("run.1", message(4))])
    publisher.put([("run.1", message(5))])
    assert publisher.flush(10)
    assert layer.sent == [("run.1", 1), ("run.1", 4), ("run.1", 5)]
    received = [await layer.receive(channel) for _ in range(3)]
    assert [m["n"] for m in received] == [1, 4, 5]


async def test_a_member_past_the_group_expiry_does_not_count_and_is_dropped(layer) -> None:
    """As group_send would: the stale member is expired, and nothing is sent to it."""
    channel = await layer.new_channel()
    key = layer._group_key("run.3")
    await layer.connection(0).zadd(key, {channel: 1})  # joined in 1970
    publisher = live._Publisher(layer)
    publisher.put([("run.3", message(1))])
    assert publisher.flush(10)
    assert layer.sent == []
    assert await layer.connection(0).zcard(key) == 0
