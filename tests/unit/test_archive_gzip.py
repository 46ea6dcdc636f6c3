"""Archived pages are gzip any reader takes, and the same page always archives to the same bytes."""

from __future__ import annotations

import gzip
import json
from typing import Any

from functions.core.archive import S3Archive


class Bucket:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Key: str, Body: bytes, **_: Any) -> None:  # noqa: N803 - boto3's parameter names
        self.objects[Key] = Body

    def get_object(self, *, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        return {"Body": _Body(self.objects[Key])}


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data


def test_an_archived_page_is_standard_gzip_and_rearchiving_it_writes_the_same_bytes() -> None:
    page = json.dumps({"data": [{"id": n, "name": f"Sour Diesel {n}", "price": n * 1.25} for n in range(500)]}).encode()
    bucket = Bucket()
    archive = S3Archive(bucket, "raw")
    archive.put_page("a", page)
    archive.put_page("b", page)
    assert gzip.decompress(bucket.objects["a"]) == page  # the standard library reads it (replay, Athena, a person)
    assert bucket.objects["a"] == bucket.objects["b"]  # no timestamp in the header: a retry rewrites it unchanged
    assert len(bucket.objects["a"]) < len(page) / 4
    assert archive.get_page("a") == page
