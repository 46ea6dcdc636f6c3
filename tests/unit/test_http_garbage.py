"""A vendor response is freed by reference counting once dropped: nothing of it (its page's bytes above all) waits for
the cyclic garbage collector."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import httpx
import pytest
import stamina

from functions.core.errors import VendorUnavailableError
from functions.core.http import RetryPolicy, VendorHttp
from tests.garbage import by_type, cyclic_garbage

PAGE = b'{"items": [' + b",".join(b'{"id": %d, "name": "x"}' % n for n in range(500)) + b"]}"


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3):
        yield


def vendor_http(*statuses: int) -> VendorHttp:
    answers = list(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        status = answers.pop(0) if answers else 200
        return httpx.Response(status, content=PAGE, headers={"Content-Type": "application/json"})

    client = httpx.Client(base_url="https://pos.example", transport=httpx.MockTransport(handle))
    return VendorHttp(client, "posabit", RetryPolicy(attempts=3), sleep=lambda _: None)


def test_a_dropped_response_is_freed_at_once_without_a_collection() -> None:
    http = vendor_http()
    gc.disable()
    try:
        response, payload = http.get_json("/sales", {"page": 1})
        gone = weakref.ref(response)
        assert len(payload["items"]) == 500
        del response
        assert gone() is None  # httpx's response <-> stream cycle would have kept it (and its bytes) until a collection
    finally:
        gc.enable()


def test_a_detached_response_reads_as_before() -> None:
    response, _ = vendor_http().get_json("/sales")
    assert response.content == PAGE and response.read() == PAGE and b"".join(response.iter_bytes()) == PAGE
    assert response.json()["items"][0] == {"id": 0, "name": "x"}
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.is_closed
    assert response.request.url.path == "/sales"


def test_pages_leave_nothing_of_their_responses_to_the_collector() -> None:
    http = vendor_http()
    with cyclic_garbage() as garbage:
        for page in range(1, 4):
            response, payload = http.get_json("/sales", {"page": page})
            assert len(payload["items"]) == 500
        del response, payload
    assert by_type(garbage) == {}  # neither the responses nor the retry machinery each request runs


def test_a_page_read_after_a_retry_is_not_left_to_the_collector() -> None:
    # The retried 503 stays with the retry's exception (tenacity keeps it, with its traceback) until a collection;
    # the page that came after it does not.
    http = vendor_http(503, 200)
    with cyclic_garbage() as garbage:
        response, _ = http.get_json("/sales", {"page": 1})
        assert response.status_code == 200 and http.stats.retries == 1
        del response
    assert not [o for o in garbage if isinstance(o, httpx.Response) and o.status_code == 200]


def test_an_answer_given_up_on_is_still_an_error() -> None:
    with pytest.raises(VendorUnavailableError, match="HTTP 503"):
        vendor_http(503, 503, 503).get_json("/sales")


def test_a_customer_create_leaves_nothing_of_its_response_to_the_collector() -> None:
    # Persona sync's one POST per new shopper (pos_sync.writer.send_create) reads its answer the same way.
    from functions.core.pos_sync.writer import send_create

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"customer": {"id": 42}})

    client = httpx.Client(base_url="https://pos.example", transport=httpx.MockTransport(handle))
    with cyclic_garbage() as garbage:
        response, payload = send_create(client, "posabit", "/customers", {"customer": {"email": "rosa@example.com"}})
        assert response.status_code == 201 and payload == {"customer": {"id": 42}}
        del response, payload
    assert not [o for o in garbage if isinstance(o, httpx.Response)]
