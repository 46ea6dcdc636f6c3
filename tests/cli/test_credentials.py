"""`possync credentials add/list/remove` under moto: validation, Secrets Manager, registry, secrets never shown."""

from __future__ import annotations

import json
import ssl
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer

from functions.core.errors import CredentialError
from functions.core.layout import Vendor
from functions.core.netguard import parse_private_networks
from functions.core.store import ControlStore
from functions.pull_onprem.tls import check_pin
from possync.admin.context import AdminContext
from possync.admin.credentials import check_store_name_unchanged
from possync.target import Target
from simulators.profitek import self_signed_identity
from tests.cli.conftest import Invoke

INTEGRATOR = "integrator-SECRET-111"
VENUE = "venue-SECRET-2222"
AUTH_KEY = "authkey-SECRET-333"


def secret_of(target: Target, tenant: str, vendor: Vendor, credential_id: str) -> dict[str, Any]:
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    raw = sm.get_secret_value(SecretId=target.names.credential_secret(tenant, vendor, credential_id))["SecretString"]
    return json.loads(raw)


def secret_names() -> list[str]:
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    return [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]]


def add_posabit(cli: Invoke, *extra: str, credential_id: str = "store-1") -> Any:
    return cli(
        "credentials",
        "add",
        "posabit",
        "--tenant",
        "t1",
        "--id",
        credential_id,
        "--store-name",
        "Main St",
        "--market",
        "wa",
        "--integrator-token-env",
        "PB_INTEGRATOR",
        "--venue-token-env",
        "PB_VENUE",
        *extra,
        env={"PB_INTEGRATOR": INTEGRATOR, "PB_VENUE": VENUE},
    )


def assert_no_secret(result: Any) -> None:
    for secret in (INTEGRATOR, VENUE, AUTH_KEY):
        assert secret not in result.output


def test_add_from_env_vars_stores_the_secret_and_registers_public_fields_only(
    cli: Invoke, target: Target, control: ControlStore
) -> None:
    result = add_posabit(cli)

    assert result.exit_code == 0, result.output
    assert "Added posabit credential store-1" in result.output
    assert_no_secret(result)
    stored = secret_of(target, "t1", Vendor.POSABIT, "store-1")
    assert stored["integrator_token"] == INTEGRATOR and stored["venue_token"] == VENUE
    assert stored["market"] == "WA"
    entry = control.get_credential("t1", Vendor.POSABIT, "store-1")
    assert entry is not None and entry.active
    assert entry.attributes == {"store_name": "Main St", "market": "WA"}
    assert entry.market == "WA" and entry.label == "Main St"
    registry_item = json.dumps(boto3.client("dynamodb").scan(TableName=target.control_table)["Items"])
    assert INTEGRATOR not in registry_item and VENUE not in registry_item


def test_add_reads_secrets_from_a_hidden_prompt(cli: Invoke, target: Target) -> None:
    result = cli(
        "credentials",
        "add",
        "flourish",
        "--tenant",
        "t1",
        "--id",
        "fl-1",
        "--username",
        "ops@example.com",
        "--regions",
        "co, ok",
        input=f"{AUTH_KEY}\n",
    )

    assert result.exit_code == 0, result.output
    assert AUTH_KEY not in result.output  # hide_input: the typed value is not echoed
    assert "flourish key for credential fl-1" in result.output
    stored = secret_of(target, "t1", Vendor.FLOURISH, "fl-1")
    assert stored["key"] == AUTH_KEY and stored["regions"] == ["CO", "OK"]


def test_add_reads_every_field_from_stdin_json(cli: Invoke, target: Target, control: ControlStore) -> None:
    payload = {"store_name": "Back Room", "integration_token": AUTH_KEY}
    result = cli(
        "credentials", "add", "thsuite", "--tenant", "t1", "--id", "th-1", "--from-json", "-", input=json.dumps(payload)
    )

    assert result.exit_code == 0, result.output
    assert_no_secret(result)
    assert secret_of(target, "t1", Vendor.THSUITE, "th-1")["integration_token"] == AUTH_KEY
    entry = control.get_credential("t1", Vendor.THSUITE, "th-1")
    assert entry is not None and entry.attributes == {"store_name": "Back Room"}


def test_stdin_json_missing_a_secret_is_refused_without_prompting(offline_cli: Invoke) -> None:
    result = offline_cli(
        "credentials",
        "add",
        "thsuite",
        "--tenant",
        "t1",
        "--id",
        "th-1",
        "--from-json",
        "-",
        input='{"store_name": "x"}',
    )

    assert result.exit_code == 1
    assert "integration_token is missing" in result.output


def test_missing_required_field_names_the_option_before_anything_is_stored(offline_cli: Invoke) -> None:
    result = offline_cli(
        "credentials",
        "add",
        "posabit",
        "--tenant",
        "t1",
        "--id",
        "store-1",
        "--integrator-token-env",
        "A",
        "--venue-token-env",
        "B",
        env={"A": INTEGRATOR, "B": VENUE},
    )

    assert result.exit_code == 1
    assert "needs store_name" in result.output and "--store-name" in result.output
    assert_no_secret(result)


def test_invalid_secret_is_refused_by_field_name_without_echoing_it(offline_cli: Invoke) -> None:
    short = "short7"  # tokens need at least 8 characters
    result = offline_cli(
        "credentials",
        "add",
        "posabit",
        "--tenant",
        "t1",
        "--id",
        "store-1",
        "--store-name",
        "Main St",
        "--integrator-token-env",
        "A",
        "--venue-token-env",
        "B",
        env={"A": short, "B": VENUE},
    )

    assert result.exit_code == 1
    assert "integrator_token: must be at least 8 characters long" in " ".join(result.output.split())
    assert short not in result.output and VENUE not in result.output


def test_an_option_of_another_vendor_is_refused(offline_cli: Invoke) -> None:
    result = add_posabit(offline_cli, "--username", "someone")

    assert result.exit_code == 1
    assert "--username does not apply to posabit" in result.output
    assert "--store-name" in result.output  # says what posabit takes


def test_unset_environment_variable_is_reported(offline_cli: Invoke) -> None:
    result = offline_cli(
        "credentials",
        "add",
        "auphan",
        "--tenant",
        "t1",
        "--id",
        "au-1",
        "--api-key-env",
        "NOT_SET_ANYWHERE",
    )

    assert result.exit_code == 1
    assert "NOT_SET_ANYWHERE" in result.output and "not set" in result.output


@pytest.mark.parametrize("vendor", ["nope", "square"])
def test_unknown_vendor_lists_the_vendors(offline_cli: Invoke, vendor: str) -> None:
    result = offline_cli("credentials", "add", vendor, "--tenant", "t1", "--id", "c1")

    assert result.exit_code == 1
    assert f"unknown vendor {vendor!r}" in result.output and "posabit" in result.output


def test_bad_tenant_id_is_refused(offline_cli: Invoke) -> None:
    result = offline_cli("credentials", "add", "auphan", "--tenant", "Bad Tenant!", "--id", "c1")

    assert result.exit_code == 1
    assert "tenant 'Bad Tenant!' is not valid" in result.output


def add_onprem(cli: Invoke, vendor: str, address: str, *extra: str, credential_id: str = "op-1") -> Any:
    fields = ["--store-name", "Store One"] if vendor == "profitek" else []
    key_option = "--auth-key-env" if vendor == "profitek" else "--api-key-env"
    return cli(
        "credentials",
        "add",
        vendor,
        "--tenant",
        "t1",
        "--id",
        credential_id,
        "--ip-port",
        address,
        key_option,
        "KEY",
        *fields,
        *extra,
        env={"KEY": AUTH_KEY},
    )


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254:80",  # the instance metadata address
        "127.0.0.1:8080",
        "0.0.0.0:8080",
        "10.1.2.3:8443",  # private, not allowed by default
        "[::1]:8080",
        "224.0.0.1:80",
        "52.10.20.30:99999",  # no such port
        "localhost:8080",  # a name is resolved once and what it resolves to is checked
    ],
)
@pytest.mark.parametrize("vendor", ["profitek", "auphan"])
def test_hostile_custom_address_is_rejected_before_anything_is_stored(
    offline_cli: Invoke, vendor: str, address: str
) -> None:
    result = add_onprem(offline_cli, vendor, address)

    assert result.exit_code == 1, result.output
    assert f"custom IP:PORT {address!r}" in result.output
    assert_no_secret(result)


def test_on_a_local_runtime_without_private_hosts_a_private_address_is_refused_even_with_allow_private(
    offline_cli: Invoke,
) -> None:
    # Given a local runtime started without --allow-private-hosts (its pulls refuse every private address)
    refused = add_onprem(offline_cli, "profitek", "10.0.0.5:8080", "--allow-private")

    # Then the credential is refused, and the way out is a runtime that allows them, not a CDK context
    assert refused.exit_code == 1
    assert "this local runtime's pulls call no private address; nothing was stored" in refused.output
    assert "start it again with --allow-private-hosts" in refused.output
    assert "allow_private_hosts=true" not in refused.output and "Hint: if the deployment" not in refused.output


def test_the_old_allow_private_flag_changes_nothing_and_says_so(cli: Invoke, target: Target) -> None:
    target.private_host_networks = parse_private_networks("10.20.0.0/16")

    accepted = add_onprem(cli, "auphan", "10.20.3.4:8443", "--allow-private")

    assert accepted.exit_code == 0, accepted.output
    assert "--allow-private is no longer needed and changes nothing" in accepted.output
    assert secret_of(target, "t1", Vendor.AUPHAN, "op-1")["custom_ip_port"] == "10.20.3.4:8443"


def test_against_a_stack_a_private_address_is_checked_against_the_ranges_it_deploys(
    cli: Invoke, target: Target
) -> None:
    # Given a deployment whose on-premises pulls reach 10.20.0.0/16 only (its PrivateHostCidrs output)
    target.private_host_networks = parse_private_networks("10.20.0.0/16")

    # A private address outside those ranges is refused even with --allow-private: every pull would refuse it
    outside = add_onprem(cli, "auphan", "10.1.2.3:8443", "--allow-private")
    assert outside.exit_code == 1
    assert "outside the ranges this deployment reaches (10.20.0.0/16)" in outside.output
    assert "onprem_vpc.private_cidrs" in outside.output
    assert target.names.credential_secret("t1", Vendor.AUPHAN, "op-1") not in secret_names()

    # One inside them is stored without the flag: the deployment, not the admin, decides
    inside = add_onprem(cli, "auphan", "10.20.3.4:8443")
    assert inside.exit_code == 0, inside.output
    assert secret_of(target, "t1", Vendor.AUPHAN, "op-1")["custom_ip_port"] == "10.20.3.4:8443"


def test_against_a_stack_without_private_ranges_a_private_address_is_refused(cli: Invoke, target: Target) -> None:
    target.private_host_networks = ()
    refused = add_onprem(cli, "auphan", "10.1.2.3:8443", "--allow-private")
    assert refused.exit_code == 1
    assert "allow_private_hosts=true" in refused.output  # names the deployment switch, not a CLI flag
    assert target.names.credential_secret("t1", Vendor.AUPHAN, "op-1") not in secret_names()


def test_public_custom_address_is_stored(cli: Invoke, control: ControlStore) -> None:
    result = add_onprem(cli, "profitek", "52.10.20.30:8080")

    assert result.exit_code == 0, result.output
    entry = control.get_credential("t1", Vendor.PROFITEK, "op-1")
    assert entry is not None
    assert entry.attributes == {"store_name": "Store One", "custom_ip_port": "52.10.20.30:8080"}


def test_profitek_store_rename_is_refused_and_the_same_name_can_be_updated(cli: Invoke, target: Target) -> None:
    assert add_onprem(cli, "profitek", "52.10.20.30:8080").exit_code == 0

    renamed = cli(
        "credentials",
        "add",
        "profitek",
        "--tenant",
        "t1",
        "--id",
        "op-1",
        "--store-name",
        "Store Two",
        "--auth-key-env",
        "KEY",
        "--yes",
        env={"KEY": "another-key-4444"},
    )
    assert renamed.exit_code == 1
    assert "profitek credential op-1" in renamed.output and "cannot be changed" in renamed.output
    assert "add a new credential" in renamed.output
    assert secret_of(target, "t1", Vendor.PROFITEK, "op-1")["store_name"] == "Store One"

    rotated = add_onprem(cli, "profitek", "52.10.20.31:8080", "--yes")
    assert rotated.exit_code == 0, rotated.output
    assert "Updated profitek credential op-1" in rotated.output
    assert secret_of(target, "t1", Vendor.PROFITEK, "op-1")["custom_ip_port"] == "52.10.20.31:8080"


def test_replacing_an_existing_credential_asks_first(cli: Invoke, target: Target) -> None:
    assert add_posabit(cli).exit_code == 0

    declined = cli(
        "credentials",
        "add",
        "posabit",
        "--tenant",
        "t1",
        "--id",
        "store-1",
        "--store-name",
        "Main St",
        "--integrator-token-env",
        "A",
        "--venue-token-env",
        "B",
        input="n\n",
        env={"A": "new-integrator-9", "B": "new-venue-99"},
    )

    assert declined.exit_code == 1
    assert "exists; replace its values?" in declined.output
    assert secret_of(target, "t1", Vendor.POSABIT, "store-1")["integrator_token"] == INTEGRATOR


def test_list_shows_credentials_with_their_last_pull(cli: Invoke, control: ControlStore) -> None:
    assert add_posabit(cli).exit_code == 0
    assert add_posabit(cli, credential_id="store-2").exit_code == 0
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    control.save_status("t1", Vendor.POSABIT, "store-1", {"last_outcome": "ok", "last_attempt_at": two_hours_ago})

    table = cli("credentials", "list", "--tenant", "t1")
    as_json = cli("credentials", "list", "--vendor", "posabit", "--output", "json")
    as_csv = cli("credentials", "list", "-o", "csv")

    assert table.exit_code == 0, table.output
    assert "store-1" in table.output and "Main St" in table.output and "2h 0m ago" in table.output
    assert_no_secret(table)
    rows = json.loads(as_json.stdout)
    assert [(r["id"], r["last_outcome"]) for r in rows] == [("store-1", "ok"), ("store-2", None)]
    assert rows[0]["last_attempt_at"] == two_hours_ago
    assert as_csv.stdout.splitlines()[0].startswith("tenant,vendor,id,store")
    assert len(as_csv.stdout.splitlines()) == 3


def test_list_with_nothing_registered_says_how_to_add(cli: Invoke) -> None:
    result = cli("credentials", "list", "--tenant", "t2")  # a tenant with no store yet

    assert result.exit_code == 0
    assert "possync credentials add" in result.output


def test_remove_deletes_secret_with_recovery_and_registry_entry(
    cli: Invoke, target: Target, control: ControlStore
) -> None:
    assert add_posabit(cli).exit_code == 0

    declined = cli("credentials", "remove", "posabit", "--tenant", "t1", "--id", "store-1", input="n\n")
    assert declined.exit_code == 1
    assert control.get_credential("t1", Vendor.POSABIT, "store-1") is not None

    removed = cli("credentials", "remove", "posabit", "--tenant", "t1", "--id", "store-1", input="y\n")
    assert removed.exit_code == 0, removed.output
    assert "data already pulled stays" in removed.output.lower()
    assert "restore-secret" in removed.output
    assert control.get_credential("t1", Vendor.POSABIT, "store-1") is None
    described = boto3.client("secretsmanager").describe_secret(
        SecretId=target.names.credential_secret("t1", Vendor.POSABIT, "store-1")
    )
    assert "DeletedDate" in described  # scheduled, restorable

    # Re-adding the same id restores the secret with the new values.
    again = add_posabit(cli)
    assert again.exit_code == 0, again.output
    assert "restored" in again.output
    assert secret_of(target, "t1", Vendor.POSABIT, "store-1")["venue_token"] == VENUE


def test_remove_unknown_credential_is_an_error(cli: Invoke) -> None:
    result = cli("credentials", "remove", "posabit", "--tenant", "t1", "--id", "ghost", "--yes")

    assert result.exit_code == 1
    assert "has no posabit credential ghost" in result.output


def test_store_name_rule_has_a_fallback_when_pull_onprem_lacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "functions.pull_onprem.profitek.store_name", None)  # import fails

    context = AdminContext(local=True)
    check_store_name_unchanged(context, "t1", Vendor.PROFITEK, "op-1", "Store One", " Store One ")  # same: fine
    with pytest.raises(typer.Exit):
        check_store_name_unchanged(context, "t1", Vendor.PROFITEK, "op-1", "Store One", "Store Two")


def test_malformed_json_is_reported_by_position_only(offline_cli: Invoke) -> None:
    text = '{"store_name": "x", "integration_token": "' + AUTH_KEY + '",}'

    result = offline_cli(
        "credentials", "add", "thsuite", "--tenant", "t1", "--id", "th-1", "--from-json", "-", input=text
    )

    assert result.exit_code == 1
    assert "not valid JSON (line 1, column" in result.output
    assert AUTH_KEY not in result.output


# --- pinned certificates: the pull's own checks, applied before anything is stored ------------------------------

IDENTITY = self_signed_identity()


def pinned(cli: Invoke, tmp_path: Path, vendor: str, content: str | bytes, *extra: str) -> Any:
    path = tmp_path / "store.pem"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    fields = ["--store-name", "Store One"] if vendor == "profitek" else []
    key_option = "--auth-key-env" if vendor == "profitek" else "--api-key-env"
    return cli(
        "credentials",
        "add",
        vendor,
        "--tenant",
        "t1",
        "--id",
        "op-1",
        key_option,
        "KEY",
        "--pinned-cert",
        str(path),
        *fields,
        *extra,
        env={"KEY": AUTH_KEY},
    )


@pytest.mark.parametrize("vendor", ["profitek", "auphan"])
def test_a_pin_without_an_ip_port_is_refused_and_nothing_is_stored(
    cli: Invoke, tmp_path: Path, control: ControlStore, vendor: str
) -> None:
    result = pinned(cli, tmp_path, vendor, IDENTITY.cert_pem)

    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "pins a certificate but has no custom IP:PORT" in text and "nothing was stored" in text
    assert "pass --ip-port" in text
    assert secret_names() == [] and control.get_credential("t1", Vendor(vendor), "op-1") is None


NOT_CERTIFICATES = {
    "only the BEGIN line": "-----BEGIN CERTIFICATE-----\n",
    "BEGIN and END around text": "-----BEGIN CERTIFICATE-----\nnot a certificate at all\n-----END CERTIFICATE-----\n",
    "BEGIN and END around short base64": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    "a certificate with its private key": IDENTITY.cert_pem + IDENTITY.key_pem,
}


@pytest.mark.parametrize("content", NOT_CERTIFICATES.values(), ids=NOT_CERTIFICATES.keys())
@pytest.mark.parametrize("vendor", ["profitek", "auphan"])
def test_a_pin_that_is_not_one_certificate_is_refused_with_the_pulls_own_message(
    cli: Invoke, tmp_path: Path, vendor: str, content: str
) -> None:
    with pytest.raises(CredentialError) as at_pull:
        check_pin(Vendor(vendor), "52.10.20.30:8443", content)

    result = pinned(cli, tmp_path, vendor, content, "--ip-port", "52.10.20.30:8443")

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert " ".join(str(at_pull.value).split()) in " ".join(result.output.split())
    assert IDENTITY.key_pem.splitlines()[1] not in result.output  # a pasted key is never echoed
    assert secret_names() == []


def test_a_pin_with_an_http_prefix_is_refused(cli: Invoke, tmp_path: Path) -> None:
    result = pinned(cli, tmp_path, "auphan", IDENTITY.cert_pem, "--ip-port", "http://52.10.20.30:8080")

    assert result.exit_code == 1 and "says http://" in result.output
    assert secret_names() == []


def test_a_binary_der_certificate_file_gets_a_conversion_hint(cli: Invoke, tmp_path: Path) -> None:
    der = ssl.PEM_cert_to_DER_cert(IDENTITY.cert_pem)

    result = pinned(cli, tmp_path, "auphan", der, "--ip-port", "52.10.20.30:8443")

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # not a UnicodeDecodeError traceback
    text = " ".join(result.output.split())
    assert "is not UTF-8 text" in text and "openssl x509 -inform der" in text
    assert secret_names() == []


def test_a_good_pin_with_an_ip_port_is_stored_and_its_fingerprint_shown(
    cli: Invoke, tmp_path: Path, target: Target, control: ControlStore
) -> None:
    result = pinned(cli, tmp_path, "profitek", IDENTITY.cert_pem, "--ip-port", "52.10.20.30:8443")

    assert result.exit_code == 0, result.output
    pin = check_pin(Vendor.PROFITEK, "52.10.20.30:8443", IDENTITY.cert_pem)
    assert pin is not None and pin.fingerprint in result.output, result.output
    assert secret_of(target, "t1", Vendor.PROFITEK, "op-1")["pinned_cert_pem"] == IDENTITY.cert_pem
    entry = control.get_credential("t1", Vendor.PROFITEK, "op-1")
    assert entry is not None and entry.attributes["pinned_cert"] is True


def test_a_pin_in_from_json_is_checked_too(offline_cli: Invoke) -> None:
    payload = {"api_key": AUTH_KEY, "pinned_cert_pem": "-----BEGIN CERTIFICATE-----\n"}

    result = offline_cli(
        "credentials", "add", "auphan", "-t", "t1", "--id", "op-1", "--from-json", "-", input=json.dumps(payload)
    )

    assert result.exit_code == 1
    assert "no custom IP:PORT" in " ".join(result.output.split())
    assert AUTH_KEY not in result.output


# --- --from-json files that cannot be read: a clear error, never a traceback, never a secret ---------------------


def from_json(cli: Invoke, path: str, input: str | bytes | None = None) -> Any:
    return cli("credentials", "add", "auphan", "-t", "t1", "--id", "op-1", "--from-json", path, input=input)


def test_a_non_utf8_json_file_is_a_clear_error_without_its_bytes(offline_cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "cred.json"
    path.write_bytes(json.dumps({"api_key": "caf\u00e9-SECRET-9"}, ensure_ascii=False).encode("latin-1"))

    result = from_json(offline_cli, str(path))

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # not a UnicodeDecodeError traceback
    text = " ".join(result.output.split())
    assert f"--from-json {path} is not UTF-8 text (undecodable byte at offset 16)" in text
    assert "save it as UTF-8" in text
    assert "SECRET" not in result.output and "\\xe9" not in result.output and "0xe9" not in result.output


def test_non_utf8_json_on_stdin_is_a_clear_error(offline_cli: Invoke) -> None:
    result = from_json(offline_cli, "-", input=b'{"api_key": "\xff\xfeSECRET-12"}')

    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "--from-json stdin is not UTF-8 text" in result.output
    assert "SECRET" not in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('["api_key", "x"]', "must be a JSON object of credential fields, not a JSON array"),
        ('"just a string"', "not a JSON string"),
        ("api_key=abc", "not valid JSON (line 1, column 1)"),
        ("", "not valid JSON (line 1, column 1)"),
        ("[" * 100_000, "nested too deeply"),
    ],
    ids=["array", "string", "not json", "empty", "deep"],
)
def test_json_that_is_not_an_object_says_what_is_expected(
    offline_cli: Invoke, tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "cred.json"
    path.write_text(content)

    result = from_json(offline_cli, str(path))

    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert expected in " ".join(result.output.split())


def test_a_missing_file_and_a_directory_are_named(offline_cli: Invoke, tmp_path: Path) -> None:
    missing = from_json(offline_cli, str(tmp_path / "nope.json"))
    directory = from_json(offline_cli, str(tmp_path))

    assert missing.exit_code == 1 and "nope.json: no such file" in " ".join(missing.output.split())
    assert directory.exit_code == 1 and "is a directory, not a file" in " ".join(directory.output.split())


def test_a_utf8_file_with_a_byte_order_mark_is_read(cli: Invoke, tmp_path: Path, target: Target) -> None:
    path = tmp_path / "cred.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"api_key": AUTH_KEY}).encode())

    result = from_json(cli, str(path))

    assert result.exit_code == 0, result.output
    assert secret_of(target, "t1", Vendor.AUPHAN, "op-1")["api_key"] == AUTH_KEY


def test_a_fingerprint_is_printed_verbatim_where_it_spells_an_emoji(capsys: pytest.CaptureFixture[str]) -> None:
    """rich turns ":cd:" into an emoji unless told not to: a fingerprint containing "CD" between colons (about one in
    eight certificates) was printed with a disc in it, and so could never match openssl's."""
    from possync.admin.render import console, err_console

    console().print("fingerprint D1:CD:9B", markup=False)
    err_console().print("id :cd: :smile:")
    captured = capsys.readouterr()
    assert "D1:CD:9B" in captured.out and ":cd: :smile:" in captured.err


def test_posabit_from_json_takes_the_deployments_integrator_token(cli: Invoke, target: Target) -> None:
    # Given a deployment with its own integrator token, and a merchant's JSON with only the store's key
    saved = cli("credentials", "integrator-token", "posabit", "--token-env", "T", env={"T": INTEGRATOR})
    merchant = json.dumps({"venue_token": VENUE, "store_name": "S", "market": "WA"})
    own = json.dumps({"venue_token": VENUE, "store_name": "S", "integrator_token": "its-own-token-1"})

    added = cli("credentials", "add", "posabit", "-t", "t1", "--id", "p2", "--from-json", "-", "--yes", input=merchant)
    kept = cli("credentials", "add", "posabit", "-t", "t1", "--id", "p3", "--from-json", "-", "--yes", input=own)

    assert saved.exit_code == 0, saved.output
    assert added.exit_code == 0, added.output
    assert secret_of(target, "t1", Vendor.POSABIT, "p2")["integrator_token"] == INTEGRATOR
    assert kept.exit_code == 0, kept.output
    assert secret_of(target, "t1", Vendor.POSABIT, "p3")["integrator_token"] == "its-own-token-1"


def test_posabit_from_json_without_any_integrator_token_says_how_to_set_one(cli: Invoke) -> None:
    merchant = json.dumps({"venue_token": VENUE, "store_name": "S"})

    result = cli("credentials", "add", "posabit", "-t", "t1", "--id", "p2", "--from-json", "-", input=merchant)

    assert result.exit_code == 1
    assert "possync credentials integrator-token posabit" in " ".join(result.output.split())


@pytest.mark.parametrize("vendor", ["profitek", "auphan"])
def test_an_empty_ip_port_is_refused_not_read_as_the_hosted_api(cli: Invoke, vendor: str) -> None:
    result = add_onprem(cli, vendor, "")
    blank = add_onprem(cli, vendor, "  ", credential_id="op-2")

    text = " ".join(result.output.split())
    assert result.exit_code == 1 and blank.exit_code == 1
    assert "Error: --ip-port is empty" in text
    assert f"or leave out --ip-port for {vendor}'s hosted API" in text
    assert cli("credentials", "list", "--tenant", "t1", "--output", "json").stdout.strip() == "[]"


def test_an_ip_port_with_a_leading_zero_port_is_refused(cli: Invoke) -> None:
    result = add_onprem(cli, "profitek", "52.10.20.30:080")

    assert result.exit_code == 1 and "leading zero" in result.output
