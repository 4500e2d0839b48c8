"""Synthetic scrape targets for Prometheus: counters and gauges that move like real ones."""
from __future__ import annotations

import random
from email.message import Message

from scripts.capacity import loopback

SERIES_PER_TARGET = 5000     # a large exporter; 100k series = 20 targets


class Targets:
    """`n` targets of `per_target` series each at http://127.0.0.1:<port>/metrics/<i>. Per scrape, each counter
    grows by its own small step (0 for a sixth of them: series that stand still) and each gauge takes one of a
    few values, as request counters and queue lengths do."""

    def __init__(self, n: int, per_target: int = SERIES_PER_TARGET):
        self.n, self.per_target = n, per_target
        self.scrapes = [0] * n
        rnd = random.Random(1)
        self.series = []
        for t in range(n):
            rows = []
            for j in range(per_target):
                if j % 5 == 4:
                    rows.append((f'bench_queue_length{{target="t{t}",queue="q{j}"}} ', 0, rnd.choice((0, 1, 1, 2, 5))))
                else:
                    route, code = f"/api/r{j // 8}", ("200", "200", "200", "404", "500")[j % 5]
                    rows.append((f'bench_requests_total{{target="t{t}",route="{route}",code="{code}",n="{j}"}} ',
                                 rnd.randrange(10**6), rnd.choice((0, 1, 1, 2, 3, 7))))
            self.series.append(rows)
        self.server = loopback.serve("GET", self._scrape)
        self.port = self.server.server_address[1]

    def _scrape(self, path: str, headers: Message, body: bytes) -> tuple[bytes, str]:
        t = int(path.rsplit("/", 1)[1])
        k = self.scrapes[t] = self.scrapes[t] + 1
        text = "".join(f"{p}{base + k * step}\n" if p.startswith("bench_requests")
                       else f"{p}{(base + k * step) % 7}\n" for p, base, step in self.series[t])
        return text.encode(), "text/plain; version=0.0.4"

    def scrape_configs(self) -> list[dict]:
        return [{"job_name": "bench", "static_configs": [
            {"targets": [f"127.0.0.1:{self.port}"], "labels": {"__metrics_path__": f"/metrics/{t}"}}
            for t in range(self.n)]}]

    def close(self) -> None:
        loopback.close(self.server)
