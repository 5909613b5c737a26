"""Peak number of Postgres connections per `application_name`, sampled from pg_stat_activity."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import asyncpg

QUERY = """
SELECT coalesce(nullif(application_name, ''), '(unnamed)') AS app, count(*) AS n
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
GROUP BY 1
"""


class ConnectionSampler:
    """Polls every `interval_s` on its own connection (excluded from the counts)."""

    def __init__(self, database_url: str, interval_s: float = 0.1) -> None:
        self.database_url = database_url
        self.interval_s = interval_s
        self.peak: Counter[str] = Counter()
        # The most connections of all services at one sample.
        self.peak_total = 0
        self.samples = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-sampler", daemon=True)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        try:
            asyncio.run(self._poll())
        except BaseException as exc:  # reported by the benchmark, never swallowed
            self.error = exc

    async def _poll(self) -> None:
        conn = await asyncpg.connect(
            self.database_url, timeout=10, server_settings={"application_name": "roadmap-bench"}
        )
        try:
            while not self._stop.is_set():
                total = 0
                for row in await conn.fetch(QUERY):
                    app = str(row["app"])
                    if app == "roadmap-bench":
                        continue
                    self.peak[app] = max(self.peak[app], int(row["n"]))
                    total += int(row["n"])
                self.peak_total = max(self.peak_total, total)
                self.samples += 1
                await asyncio.sleep(self.interval_s)
        finally:
            await conn.close()
