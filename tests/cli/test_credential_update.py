"""Updating a credential: the change shown (public fields; secrets only as changed), --verify against the POS
(a real POSaBIT simulator over HTTP), what never changes refused, and help that claims only what is true."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from possync.admin.context import AdminContext
from possync.cli import app
from possync.target import Target
from simulators.posabit import PosabitSimulator


@pytest.fixture(scope="module")
def simulator() -> Iterator[PosabitSimulator]:
    sim = PosabitSimulator(seed=3, store_count=1, customers_per_store=1, sales_per_store=1)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def verifying(target: Target, tenants: tuple[str, ...], simulator: PosabitSimulator) -> Any:
    """The CLI with verification on, the POSaBIT pulls (and so the check) pointed at the simulator."""
    pointed = dataclasses.replace(target, base_urls={"posabit": simulator.url})

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
        return CliRunner().invoke(
            app,
            list(args),
            obj=AdminContext(target_override=pointed),
            input=input,
            env={"COLUMNS": "200", **(env or {})},
        )

    return invoke


def add(
    cli: Any,
    simulator: PosabitSimulator,
    *extra: str,
    venue: str | None = None,
    market: str = "WA",
    input: str | None = None,
) -> Any:
    store = simulator.stores[0]
    credential = simulator.credential_for(store)
    return cli(
        "credentials",
        "add",
        "posabit",
        "--tenant",
        "t1",
        "--id",
        "downtown",
        "--store-name",
        "Downtown",
        "--market",
        market,
        "--integrator-token-env",
        "I",
        "--venue-token-env",
        "V",
        *extra,
        env={"I": credential["integrator_token"], "V": venue or credential["venue_token"]},
        input=input,
    )


def test_a_working_credential_is_verified_then_saved(verifying: Any, simulator: PosabitSimulator) -> None:
    result = add(verifying, simulator)

    assert result.exit_code == 0, result.output
    assert "Verified with posabit: the credential works (store time zone" in result.output
    assert "Added posabit credential" in result.output


def test_a_refused_credential_is_not_saved(verifying: Any, simulator: PosabitSimulator) -> None:
    result = add(verifying, simulator, venue="wrong-venue-token")

    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "Error: posabit refused the credential (HTTP 401)" in text
    assert text.count("refused the credential") == 1
    assert "nothing was stored" in text and "--no-verify" in text
    assert "re-add it" not in text  # the command adding it says what to do instead
    assert "wrong-venue-token" not in text
    listed = verifying("credentials", "list", "--tenant", "t1")
    assert "downtown" not in listed.output


def test_no_verify_saves_without_asking_the_pos(verifying: Any, simulator: PosabitSimulator) -> None:
    result = add(verifying, simulator, "--no-verify", venue="wrong-venue-token")

    assert result.exit_code == 0, result.output
    assert "Verified" not in result.output


def test_an_update_shows_what_changes_and_asks(verifying: Any, simulator: PosabitSimulator) -> None:
    assert add(verifying, simulator).exit_code == 0

    declined = add(verifying, simulator, market="OR", input="n\n")
    same = add(verifying, simulator, "--yes")

    table = " ".join(declined.output.split())
    assert declined.exit_code == 1
    assert "Changes to posabit credential downtown of t1" in table and "market" in table and "WA" in table
    assert "OR" in table and "replace its values?" in table
    assert "venue_token" not in table  # unchanged secrets are not listed; none is ever shown
    assert "already has these values" in same.output


def test_a_changed_secret_is_listed_as_changed_never_shown(verifying: Any, simulator: PosabitSimulator) -> None:
    assert add(verifying, simulator).exit_code == 0

    result = add(verifying, simulator, "--no-verify", "--yes", venue="another-venue-token")

    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "venue_token" in text and "(new secret, not shown)" in text and "another-venue-token" not in text


def test_help_claims_the_immutable_store_name_for_profitek_only() -> None:
    result = CliRunner().invoke(app, ["credentials", "add", "--help"], env={"COLUMNS": "300"})

    text = " ".join(result.output.split())
    assert "a Profitek store name never changes once set" in text
    assert "POSaBIT, THSuite, Profitek: never changes" not in text


def test_posabit_asks_the_merchant_only_for_the_store_key(verifying: Any, simulator: PosabitSimulator) -> None:
    credential = simulator.credential_for(simulator.stores[0])
    words = ["credentials", "add", "posabit", "--tenant", "t1", "--id", "downtown", "--store-name", "Downtown"]

    unset = verifying(*words, input=f"{credential['venue_token']}\n")
    saved = verifying(
        "credentials", "integrator-token", "posabit", "--token-env", "T", env={"T": credential["integrator_token"]}
    )
    added = verifying(*words, input=f"{credential['venue_token']}\n")

    assert unset.exit_code == 1 and "possync credentials integrator-token posabit" in unset.output
    assert saved.exit_code == 0, saved.output
    assert credential["integrator_token"] not in saved.output
    assert added.exit_code == 0, added.output
    assert "POSaBIT key of this store" in added.output and "integrator token" not in added.output.lower()
    assert "Verified with posabit" in added.output


def test_only_posabit_has_an_integrator_token(verifying: Any) -> None:
    result = verifying("credentials", "integrator-token", "thsuite", "--token-env", "T", env={"T": "x" * 12})

    assert result.exit_code == 1 and "thsuite has no integrator token" in result.output
