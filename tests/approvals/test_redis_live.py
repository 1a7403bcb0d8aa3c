"""With REDIS_URL, another process publishes its committed events straight to Redis."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers

from agentos_site.settings import redis_channel_layer
from tests.support.fixtures import ROOT, worker_env
from tests.support.shared_redis import REDIS_URL, needs_redis
from tests.support.websockets import connect

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    needs_redis,
]


@pytest.fixture
def redis_layer(settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Switch this process to the Redis layer under a prefix of its own."""
    prefix = f"agentos-test-{uuid.uuid4().hex[:12]}"  # other test runs share this Redis
    settings.REDIS_URL = REDIS_URL
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL, prefix)}
    channel_layers.backends.clear()
    yield prefix
    channel_layers.backends.clear()


async def test_a_worker_process_publishes_through_redis(gated_run, reviewer, redis_layer) -> None:
    prefix = redis_layer
    run = await database_sync_to_async(gated_run)()
    communicator, connected, _ = await connect(f"/ws/runs/{run.pk}/", reviewer)
    assert connected
    while (await communicator.receive_json_from(timeout=5))["type"] != "caught_up":
        pass
    env = await database_sync_to_async(worker_env)()
    env.update({"REDIS_URL": REDIS_URL, "AGENTOS_CHANNEL_PREFIX": prefix})
    code = (
        f"from workflows.services import run_cancel; run_cancel(run_id={run.pk}, "
        "actor=None, reason='from another process')"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, os.path.join(ROOT, "manage.py"), "shell", "-c", code, cwd=ROOT, env=env
    )
    assert await asyncio.wait_for(proc.wait(), timeout=60) == 0
    message = await communicator.receive_json_from(timeout=10)
    assert message["type"] == "event" and message["event"]["type"] == "run.cancelled"
    assert message["event"]["seq"] == run.last_seq + 1
    assert message["run"]["status"] == "cancelled"
    await communicator.disconnect()


async def test_the_layer_reads_longer_than_a_consumer_waits_for_its_next_message() -> None:
    """A consumer's BZPOPMIN (brpop_timeout) must end before redis-py stops reading.

    With redis-py's default 5 s socket timeout and channels_redis' 5 s pop,
    an idle consumer on a busy machine met a TimeoutError and went deaf.
    """
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(**redis_channel_layer(REDIS_URL, "agentos-check")["CONFIG"])
    pool = layer.create_pool(0)
    assert pool.connection_kwargs["socket_timeout"] >= 3 * layer.brpop_timeout
    assert pool.connection_kwargs["socket_connect_timeout"] == 5


async def test_a_workers_steps_reach_the_run_page_in_order_through_redis(
    operator, redis_layer
) -> None:
    """Each step's events, inserted together with the run, are published together, in order."""
    from workflows.services import run_create

    plan = {
        "nodes": [
            {"id": f"s{i}", "action": "verify.value_equals", "params": {"value": i, "expected": i}}
            for i in range(3)
        ]
    }
    run = await database_sync_to_async(run_create)(
        plan=plan, mode="autonomous", requester=operator
    )
    communicator, connected, _ = await connect(f"/ws/runs/{run.pk}/", operator)
    assert connected
    while (await communicator.receive_json_from(timeout=5))["type"] != "caught_up":
        pass
    env = await database_sync_to_async(worker_env)()
    env.update({"REDIS_URL": REDIS_URL, "AGENTOS_CHANNEL_PREFIX": redis_layer})
    code = f"from workflows.engine import run_advance; run_advance(run_id={run.pk})"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, os.path.join(ROOT, "manage.py"), "shell", "-c", code, cwd=ROOT, env=env
    )
    assert await asyncio.wait_for(proc.wait(), timeout=60) == 0
    seen = []
    while not seen or seen[-1][1] != "run.succeeded":
        message = await communicator.receive_json_from(timeout=10)
        if message["type"] == "event":
            seen.append((message["event"]["seq"], message["event"]["type"]))
    seqs = [seq for seq, _ in seen]
    assert seqs == list(range(run.last_seq + 1, run.last_seq + 1 + len(seen)))
    steps = [kind for _, kind in seen if kind.startswith("step.")]
    assert steps == ["step.started", "step.succeeded"] * 3
    await communicator.disconnect()
