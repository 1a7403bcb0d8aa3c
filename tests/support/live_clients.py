"""Real websocket clients that reconnect and catch up, as the run page and inbox do."""

from __future__ import annotations


class LiveClients:
    """Websocket clients (the `websockets` library) on a thread of their own.

    Each run client follows `/ws/runs/<id>/?after=N` and, whenever its
    connection drops, reconnects asking for the events after the last seq it
    got, as the run page does. The inbox client reconnects to `/ws/inbox/`.
    """

    def __init__(self, port: int, cookie: str, run_ids: list[int]) -> None:
        import asyncio
        import threading

        self.base = f"ws://127.0.0.1:{port}"
        self.headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
        self.seqs: dict[int, list[int]] = {run_id: [] for run_id in run_ids}
        self.connects: dict[int | str, int] = {run_id: 0 for run_id in run_ids} | {"inbox": 0}
        self.done: set[int] = set()
        self.inbox: list[dict] = []
        self.stopping = False
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self._main(run_ids),), daemon=True
        )
        self.thread.start()

    async def _main(self, run_ids: list[int]) -> None:
        import asyncio

        await asyncio.gather(self._inbox(), *(self._follow(run_id) for run_id in run_ids))

    async def _session(self, path: str):  # type: ignore[no-untyped-def]
        from websockets.asyncio.client import connect

        return connect(
            self.base + path, additional_headers=self.headers, open_timeout=3, close_timeout=1
        )

    async def _follow(self, run_id: int) -> None:
        import asyncio
        import json

        from websockets.exceptions import WebSocketException

        while run_id not in self.done and not self.stopping:
            after = self.seqs[run_id][-1] if self.seqs[run_id] else 0
            try:
                async with await self._session(f"/ws/runs/{run_id}/?after={after}") as ws:
                    self.connects[run_id] += 1
                    async for raw in ws:
                        message = json.loads(raw)
                        if message["type"] == "event":
                            self.seqs[run_id].append(message["event"]["seq"])
                            ended = message["event"]["type"] == "run.succeeded"
                        else:
                            ended = (
                                message["type"] == "caught_up"
                                and message["run"]["status"] == "succeeded"
                            )
                        if ended:
                            self.done.add(run_id)
                            return
            except (OSError, TimeoutError, WebSocketException):
                await asyncio.sleep(0.1)

    async def _inbox(self) -> None:
        import asyncio
        import json

        from websockets.exceptions import WebSocketException

        while not self.stopping:
            try:
                async with await self._session("/ws/inbox/") as ws:
                    self.connects["inbox"] += 1
                    async for raw in ws:
                        self.inbox.append(json.loads(raw))
                        if self.stopping:
                            return
            except (OSError, TimeoutError, WebSocketException):
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        self.stopping = True
        self.thread.join(timeout=15)
