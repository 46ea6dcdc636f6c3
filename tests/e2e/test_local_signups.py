"""`possync local serve` serves the signup endpoint on 127.0.0.1: a plain HTTP post (as curl sends it) with the printed
demo key makes a persona, and `possync --local personas signup` posts one from the command line."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from functions.core.layout import Vendor
from possync.cli import app
from possync.local import serve as serve_module
from possync.local.runtime import Scale
from possync.target import user_state_file

pytestmark = pytest.mark.e2e


def test_serve_prints_the_endpoint_and_a_demo_key_that_curl_and_the_cli_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("POSSYNC_LOCAL", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(serve_module, "JOB_POLL_SECONDS", 0.01)
    out = io.StringIO()
    seen: dict[str, object] = {}

    def stop_after() -> bool:
        if seen:
            return True
        text = out.getvalue()
        url = re.findall(r"POST (http://127\.0\.0\.1:\d+/tenants/greenleaf/signups)", text)[0]
        key = re.findall(r"pss_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", text)[0]
        body = {
            "first_name": "Zoë",
            "phone": "+12065550188",
            "birth_date": "1990-04-01",
            "store": "downtown",
            "age_confirmed": True,
        }
        headers = {"content-type": "application/json", "x-api-key": key}
        seen["first"] = httpx.post(url, content=json.dumps(body), headers=headers, timeout=30)
        seen["again"] = httpx.post(url, content=json.dumps(body), headers=headers, timeout=30)
        seen["no key"] = httpx.post(url, content=json.dumps(body), headers={"content-type": "application/json"})
        seen["cli"] = CliRunner().invoke(
            app,
            [
                "--local",
                "personas",
                "signup",
                "--tenant",
                "greenleaf",
                "--first-name",
                "Ada",
                "--email",
                "ada@example.com",
                "--birth-date",
                "1990-04-01",
                "--store",
                "downtown",
                "--age-confirmed",
            ],
            env={"COLUMNS": "200"},
        )
        seen["underage"] = CliRunner().invoke(
            app,
            [
                "--local",
                "personas",
                "signup",
                "--tenant",
                "greenleaf",
                "--first-name",
                "Kid",
                "--email",
                "kid@example.com",
                "--birth-date",
                "2015-04-01",
                "--store",
                "downtown",
                "--age-confirmed",
            ],
            env={"COLUMNS": "200"},
        )
        seen["shown"] = CliRunner().invoke(
            app, ["--local", "personas", "show", "+12065550188", "--tenant", "greenleaf"], env={"COLUMNS": "200"}
        )
        return False

    serve_module.serve(
        Console(file=out, width=250),
        vendors=(Vendor.POSABIT,),
        scale=Scale(customers_per_store=2, sales_per_store=2),
        seed=7,
        tick_minutes=0,
        stop_after=stop_after,
    )

    first, again, no_key = seen["first"], seen["again"], seen["no key"]
    assert (
        isinstance(first, httpx.Response) and isinstance(again, httpx.Response) and isinstance(no_key, httpx.Response)
    )
    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json()["persona_id"] == first.json()["persona_id"]
    assert no_key.status_code == 401
    cli = seen["cli"]
    assert cli.exit_code == 0, cli.output  # type: ignore[attr-defined]
    assert "persona created" in cli.output  # type: ignore[attr-defined]
    underage = seen["underage"]
    assert underage.exit_code == 1 and "birth_date: the shopper must be 21 or older" in underage.output  # type: ignore[attr-defined]
    shown = seen["shown"]
    assert shown.exit_code == 0, shown.output  # type: ignore[attr-defined]
    assert "form" in shown.output and "Zoë" in shown.output  # type: ignore[attr-defined]
    assert "possync --local personas signup --tenant greenleaf" in out.getvalue()
    assert not user_state_file().exists()
