"""Holders that take tonnes out of trading for good, over REST: compliance entities
surrendering against the year's obligation, and organisations retiring tonnes and applying for
carbon-neutrality certificates on what they retired.

Each write carries an idempotency key of its own and is sent again under the same key while the
server cannot be reached or asks to wait, so a write is done at most once whatever happens to
the server; what it was told is kept for the checks (`load.verify.check_offsets`).
"""

from __future__ import annotations

import contextlib
import itertools
import random
from typing import Any

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from exchange.client import Refused
from load.cast import Key
from load.crowd import Crowd, crowd
from load.wire import Lost, rest_call, rest_write

TONNES_T = (1, 5)
CERTIFY = 0.7  # the share of retirements an application follows


class _Holder(FastHttpUser):
    abstract = True
    wait_time = between(0.5, 2.0)
    network_timeout = 30.0
    connection_timeout = 5.0
    kind = ""

    def on_start(self) -> None:
        self.crowd: Crowd = crowd()
        self.number = self.crowd.take(self.kind)
        keys = self.keys()
        self.key = keys[self.number % len(keys)]
        self.rng = random.Random(f"{self.crowd.cast.seed}/{self.kind}/{self.number}")
        self.writes = itertools.count(1)

    def keys(self) -> list[Key]:
        raise NotImplementedError

    def read(self, path_qs: str, name: str) -> None:
        with self.crowd.action(), contextlib.suppress(Refused, Lost):  # counted by locust
            rest_call(self.client, self.key, "GET", path_qs, name)

    def write(self, path_qs: str, name: str, body: object) -> Any:
        """The result, or None if refused (locust counts it)."""
        key = f"{self.crowd.prefix}-{self.kind}{self.number}-{next(self.writes)}"
        with contextlib.suppress(Refused, Lost):
            return rest_write(self.client, self.key, path_qs, name, body, key)
        return None


class ComplianceEntity(_Holder):
    weight = 1
    kind = "compliance"

    def keys(self) -> list[Key]:
        return self.crowd.cast.compliance

    @task(3)
    def surrender(self) -> None:
        with self.crowd.action():
            quantity = self.rng.randint(*TONNES_T)
            year = self.crowd.cast.year
            done = self.write(
                f"/api/v1/offsets/{year}/surrenders", "surrender", {"quantity_t": quantity}
            )
            if done is not None:
                self.crowd.heard.surrenders[done["surrender_id"]] = quantity

    @task(2)
    def position(self) -> None:
        self.read(f"/api/v1/offsets/{self.crowd.cast.year}/position", "position")

    @task(1)
    def preview(self) -> None:
        self.read(f"/api/v1/offsets/{self.crowd.cast.year}/preview", "preview")

    @task(1)
    def surrenders(self) -> None:
        self.read(f"/api/v1/offsets/surrenders?year={self.crowd.cast.year}", "surrenders")


class Retiree(_Holder):
    weight = 1
    kind = "retiree"

    def keys(self) -> list[Key]:
        return self.crowd.cast.retirees

    @task(3)
    def retire(self) -> None:
        with self.crowd.action():
            quantity = self.rng.randint(*TONNES_T)
            number = self.number
            retired = self.write(
                "/api/v1/retirements",
                "retire",
                {
                    "quantity_t": quantity,
                    "beneficiary": f"Load organisation {number}",
                    "purpose": "carbon-neutral event",
                },
            )
            if retired is None:
                return
            retirement_id = retired["retirement_id"]
            self.crowd.heard.retirements[retirement_id] = quantity
            if self.rng.random() >= CERTIFY:
                return
            applied = self.write(
                "/api/v1/certificate-applications",
                "apply",
                {
                    "beneficiary": f"Load organisation {number}",
                    "subject_kind": "event",
                    "subject": f"Load event {number}-{retirement_id}",
                    "emissions_t": quantity,
                    "purpose": "carbon-neutral event",
                    "retirement_ids": [retirement_id],
                },
            )
            if applied is not None:
                self.crowd.heard.applications[applied["application_id"]] = (retirement_id,)

    @task(1)
    def retirements(self) -> None:
        self.read("/api/v1/retirements", "retirements")

    @task(1)
    def applications(self) -> None:
        self.read("/api/v1/certificate-applications", "applications")
