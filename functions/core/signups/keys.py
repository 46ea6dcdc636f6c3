"""Signup API keys (stored as SHA-256 digests, never the key) and each tenant's allowed browser origins."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from functions.core import layout
from functions.core.store import call_table

KEY_PREFIX = "pss_"
# The key id is part of the key (so a request is checked with one read) and is shown by `signup-keys list`.
_KEY = re.compile(r"pss_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})")
MAX_ORIGINS = 20


class SignupKeyError(ValueError):
    """A key that cannot be created, listed or revoked as asked (the message says what to do)."""


@dataclass(frozen=True)
class SignupKey:
    """What is stored of a key: its id, the digest of the whole key, when it was made and revoked."""

    tenant: str
    key_id: str
    digest: str
    created_at: str
    created_by: str | None = None
    revoked_at: str | None = None

    @property
    def prefix(self) -> str:
        """The part of the key `list` shows, to recognise a key without revealing it."""
        return f"{KEY_PREFIX}{self.key_id}_…"

    def as_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "prefix": self.prefix,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "revoked_at": self.revoked_at,
            "active": self.revoked_at is None,
        }


def digest_of(key: str) -> str:
    """Keys are 256-bit random: a plain SHA-256 of them cannot be reversed or guessed, so no salt is needed."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """(key id, the whole key): shown once, at creation."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The id a well-formed key carries; None for anything else (which is refused without a read)."""
    found = _KEY.fullmatch(key.strip())
    return found["id"] if found else None


def key_matches(stored: SignupKey, key: str) -> bool:
    """A key is good for a tenant only if its digest matches a key of that tenant not revoked (constant time)."""
    return stored.revoked_at is None and hmac.compare_digest(stored.digest, digest_of(key.strip()))


def check_origin(origin: str) -> str:
    """An allowed origin: scheme://host[:port], https (http only for localhost), no path, no wildcard."""
    text = origin.strip().rstrip("/")
    parts = urlsplit(text)
    local = parts.hostname in {"localhost", "127.0.0.1"}
    if (
        "*" in text
        or parts.scheme not in ({"https", "http"} if local else {"https"})
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise SignupKeyError(
            "an allowed origin is scheme://host[:port] with https (http only for localhost), no path and no "
            "wildcard, e.g. https://shop.example.com"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


class SignupKeys:
    """The control table's signup keys and allowed origins of a tenant (one partition per tenant)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.ddb = dynamodb
        self.table = table

    def _call(self, op: str, **kwargs: Any) -> Any:
        return call_table(self.ddb, self.table, op, TableName=self.table, **kwargs)

    @staticmethod
    def _key(tenant: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": layout.control_signup_keys_pk(tenant)}, "sk": {"S": sk}}

    @staticmethod
    def _from_item(item: dict[str, Any]) -> SignupKey:
        def text(name: str) -> str | None:
            value = item.get(name, {}).get("S")
            return str(value) if value is not None else None

        return SignupKey(
            tenant=str(item["tenant"]["S"]),
            key_id=str(item["sk"]["S"]),
            digest=str(item["digest"]["S"]),
            created_at=str(item["created_at"]["S"]),
            created_by=text("created_by"),
            revoked_at=text("revoked_at"),
        )

    def create(self, tenant: str, created_by: str | None = None, now: datetime | None = None) -> tuple[SignupKey, str]:
        """A new key of the tenant: (what is stored, the key itself, which nothing keeps)."""
        key_id, key = new_key()
        stored = SignupKey(tenant, key_id, digest_of(key), (now or datetime.now(UTC)).isoformat(), created_by)
        item = {
            **self._key(tenant, key_id),
            "tenant": {"S": tenant},
            "digest": {"S": stored.digest},
            "created_at": {"S": stored.created_at},
        }
        if created_by:
            item["created_by"] = {"S": created_by}
        self._call("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        return stored, key

    def get(self, tenant: str, key_id: str) -> SignupKey | None:
        item = self._call("get_item", Key=self._key(tenant, key_id), ConsistentRead=True).get("Item")
        return self._from_item(item) if item else None

    def list(self, tenant: str) -> list[SignupKey]:
        found: list[SignupKey] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": layout.control_signup_keys_pk(tenant)}},
            "ConsistentRead": True,
        }
        while True:
            page = self._call("query", **kwargs)
            found += [self._from_item(i) for i in page.get("Items", []) if "digest" in i]
            if "LastEvaluatedKey" not in page:
                return sorted(found, key=lambda k: (k.created_at, k.key_id))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def revoke(self, tenant: str, key_id: str, now: datetime | None = None) -> SignupKey:
        """Revoked at once and for good (a revoked key is never accepted again); revoking twice changes nothing."""
        stored = self.get(tenant, key_id)
        if stored is None:
            raise SignupKeyError(f"tenant {tenant} has no signup key {key_id!r}")
        if stored.revoked_at is not None:
            return stored
        at = (now or datetime.now(UTC)).isoformat()
        try:
            self._call(
                "update_item",
                Key=self._key(tenant, key_id),
                UpdateExpression="SET revoked_at = :at",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(revoked_at)",
                ExpressionAttributeValues={":at": {"S": at}},
            )
        except ClientError:
            return self.get(tenant, key_id) or stored  # revoked meanwhile
        return SignupKey(stored.tenant, stored.key_id, stored.digest, stored.created_at, stored.created_by, at)

    def authenticate(self, tenant: str, key: str | None) -> bool:
        """True only for an active key of this tenant (another tenant's key, a revoked or mistyped one: False)."""
        if not key:
            return False
        key_id = key_id_of(key)
        if key_id is None:
            return False
        stored = self.get(tenant, key_id)
        return stored is not None and stored.tenant == tenant and key_matches(stored, key)

    def origins(self, tenant: str) -> tuple[str, ...]:
        item = self._call("get_item", Key=self._key(tenant, layout.CONTROL_SIGNUP_ORIGINS_SK)).get("Item")
        if not item:
            return ()
        return tuple(str(v) for v in item.get("origins", {}).get("SS", []))

    def set_origins(self, tenant: str, origins: Sequence[str]) -> tuple[str, ...]:
        """Replace the tenant's allowed origins (checked); an empty list allows no browser origin."""
        checked = tuple(sorted({check_origin(o) for o in origins}))
        if len(checked) > MAX_ORIGINS:
            raise SignupKeyError(f"at most {MAX_ORIGINS} allowed origins per tenant")
        key = self._key(tenant, layout.CONTROL_SIGNUP_ORIGINS_SK)
        if not checked:
            self._call("delete_item", Key=key)
        else:
            self._call("put_item", Item={**key, "tenant": {"S": tenant}, "origins": {"SS": list(checked)}})
        return checked
