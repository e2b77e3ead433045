"""REST readers: a trading desk's back office reading, over signed REST, the account, holdings,
open orders and settled trades of one trader while it trades, and the public market view."""

from __future__ import annotations

import contextlib

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from exchange.client import Refused
from load.crowd import Crowd, crowd
from load.wire import Lost, rest_call


class Reader(FastHttpUser):
    wait_time = between(0.2, 1.0)
    weight = 2
    network_timeout = 30.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        self.crowd: Crowd = crowd()
        traders = self.crowd.cast.traders
        self.key = traders[self.crowd.take("reader") % len(traders)]

    def read(self, path_qs: str, name: str, signed: bool = True) -> None:
        with self.crowd.action(), contextlib.suppress(Refused, Lost):  # counted by locust
            rest_call(self.client, self.key if signed else None, "GET", path_qs, name)

    @task(3)
    def account(self) -> None:
        self.read("/api/v1/account", "account")

    @task(2)
    def holdings(self) -> None:
        self.read("/api/v1/holdings", "holdings")

    @task(3)
    def market(self) -> None:
        self.read("/api/v1/market", "market", signed=False)

    @task(3)
    def orders(self) -> None:
        self.read("/api/v1/orders", "orders")

    @task(2)
    def trades(self) -> None:
        self.read(f"/api/v1/trades?symbol={self.crowd.cast.symbol}&limit=50", "trades")
