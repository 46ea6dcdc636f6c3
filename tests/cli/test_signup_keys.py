"""`possync signup-keys`: the key shown once, listed without it, revoked for good; allowed origins."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3

from functions.core.signups.keys import SignupKeys
from tests.cli.conftest import Invoke


def created_key(cli: Invoke, tenant: str = "t1") -> str:
    result = cli("signup-keys", "create", "--tenant", tenant)
    assert result.exit_code == 0, result.output
    [key] = re.findall(r"pss_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", result.output)
    return key


def test_create_shows_the_key_once_and_list_never(cli: Invoke, resources: Any) -> None:
    key = created_key(cli)
    keys = SignupKeys(boto3.client("dynamodb"), resources.control_table)
    assert keys.authenticate("t1", key) and not keys.authenticate("t2", key)
    listed = cli("signup-keys", "list", "--tenant", "t1", "--output", "json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert key not in listed.output and row["revoked_at"] is None
    assert key.startswith(row["prefix"].rstrip("…")) and row["created_by"]


def test_revoke_refuses_the_key_from_then_on(cli: Invoke, resources: Any) -> None:
    key = created_key(cli)
    key_id = key.split("_")[1]
    result = cli("signup-keys", "revoke", key_id, "--tenant", "t1")
    assert result.exit_code == 0, result.output
    assert "revoked" in result.output
    assert not SignupKeys(boto3.client("dynamodb"), resources.control_table).authenticate("t1", key)
    [row] = json.loads(cli("signup-keys", "list", "--tenant", "t1", "--output", "json").output)
    assert row["revoked_at"]
    # another tenant's key id is not this tenant's to revoke
    other = cli("signup-keys", "revoke", key_id, "--tenant", "t2")
    assert other.exit_code == 1 and "has no signup key" in other.output


def test_origins_are_checked_and_never_a_wildcard(cli: Invoke) -> None:
    ok = cli("signup-keys", "origins", "--tenant", "t1", "--allow", "https://Shop.Example.com/")
    assert ok.exit_code == 0 and "https://shop.example.com" in ok.output
    for bad in ("*", "https://*.example.com", "http://shop.example.com", "https://shop.example.com/form"):
        refused = cli("signup-keys", "origins", "--tenant", "t1", "--allow", bad)
        assert refused.exit_code == 1 and "allowed origin" in refused.output, bad
    assert "https://shop.example.com" in cli("signup-keys", "origins", "--tenant", "t1").output
