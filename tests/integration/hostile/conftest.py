"""What every hostile-server test module shares: quick retries and timeouts, its vendor's server, and a pull world
with one credential on it. A module names its server class (`SERVER`), its vendor (`VENDOR`) and the credential the
world registers (`CREDENTIAL`, under the store label `STORE_LABEL`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stamina

from functions.core import layout
from tests.integration.pulls import PullWorld

STORE_LABEL = "hostile"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(layout.ENV_SETTLE_SECONDS, "0")
    monkeypatch.setenv(layout.ENV_HTTP_READ_TIMEOUT, "0.5")
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture
def pos(request: pytest.FixtureRequest) -> Iterator[Any]:
    server = request.module.SERVER()
    server.server.start()
    yield server
    server.server.stop()


@pytest.fixture
def world(request: pytest.FixtureRequest, pos: Any, resources: Any) -> PullWorld:
    w = PullWorld(request.module.VENDOR, pos, resources)
    w.register(STORE_LABEL, request.module.CREDENTIAL)
    return w
