"""The raw archive: every page exactly as the POS sent it, gzip-compressed under a deterministic S3 key."""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from isal import igzip

from functions.core.errors import AwsServiceError

# gzip level of an archived page (ISA-L's igzip, which writes the gzip format every reader takes): level 1. A raw page
# is read back rarely (replay) and S3 stores the few percent more it leaves for next to nothing ($0.023 per GB-month),
# while zlib's level 6 took about twenty times its CPU.
ARCHIVE_GZIP_LEVEL = 1


class ArchiveError(AwsServiceError):
    """S3 refused, throttled or failed a write or read of the raw archive (after botocore's retries)."""


class S3Archive:
    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.puts = 0

    def put_page(self, key: str, body: bytes, metadata: Mapping[str, str] | None = None) -> None:
        # mtime=0 keeps the object byte-identical when a retry rewrites the same page.
        blob = igzip.compress(body, ARCHIVE_GZIP_LEVEL, mtime=0)
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=blob,
                ContentType="application/json",
                ContentEncoding="gzip",
                Metadata=dict(metadata or {}),
            )
        except (ClientError, BotoCoreError) as exc:
            raise ArchiveError(f"could not archive page {key}: {_code(exc)}") from exc
        self.puts += 1

    def get_page(self, key: str) -> bytes:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise ArchiveError(f"could not read archived page {key}: {_code(exc)}") from exc
        data: bytes = obj["Body"].read()
        # Some S3 clients transparently decode Content-Encoding; accept either form.
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"]
        except (ClientError, BotoCoreError) as exc:
            raise ArchiveError(f"could not list archive prefix {prefix}: {_code(exc)}") from exc


def _code(exc: ClientError | BotoCoreError) -> str:
    """S3's error code (e.g. SlowDown, InternalError) or the botocore error's class: never a message with data."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__
