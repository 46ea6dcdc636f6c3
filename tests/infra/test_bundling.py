"""Local bundling: the requirements come from pyproject, wheels for the Lambda platform, the bundle is cached."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra import bundling
from infra.bundling import BundleSpec, BundlingError, LocalPythonBundling, locked_versions
from tests.infra.conftest import REPO_ROOT

LOCK = """
version = 1
[[package]]
name = "possync"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "pydantic-core"
version = "2.50.4"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "networkx"
version = "3.4.2"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "networkx"
version = "3.5"
source = { registry = "https://pypi.org/simple" }
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A minimal project: pyproject with runtime dependencies, a lock, and a functions package."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["httpx==0.28.1", "pydantic==2.14.3"]\n', encoding="utf-8"
    )
    (tmp_path / "uv.lock").write_text(LOCK, encoding="utf-8")
    package = tmp_path / "functions" / "core"
    package.mkdir(parents=True)
    (tmp_path / "functions" / "__init__.py").write_text("", encoding="utf-8")
    (package / "layout.py").write_text("PREFIX = 'possync'\n", encoding="utf-8")
    return tmp_path


def test_spec_targets_the_lambda_runtime_and_reads_pyproject() -> None:
    spec = BundleSpec.for_lambda()
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert (spec.python_version, spec.machine) == ("3.12", "aarch64")
    assert spec.requirements == tuple(pyproject["project"]["dependencies"])
    assert spec.package_dir == REPO_ROOT / "functions"


def test_locked_versions_pin_single_version_packages_only(project: Path) -> None:
    assert locked_versions(project / "uv.lock") == {"pydantic-core": "2.50.4"}


def test_pip_command_installs_binary_wheels_for_the_lambda_platform(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundling.importlib.util, "find_spec", lambda name: object())
    command = BundleSpec.for_lambda(root=project).install_command(Path("/out"), Path("/r.txt"), Path("/c.txt"))

    assert command[1:4] == ["-m", "pip", "install"]
    text = " ".join(command)
    for part in (
        "--platform manylinux2014_aarch64",
        "--only-binary=:all:",
        "--python-version 3.12",
        "--implementation cp",
        "--target /out",
        "--requirement /r.txt",
        "--constraint /c.txt",
    ):
        assert part in text


def test_uv_is_used_when_the_venv_has_no_pip(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundling.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(bundling.shutil, "which", lambda name: "/opt/bin/uv" if name == "uv" else None)
    command = BundleSpec.for_lambda(root=project).install_command(Path("/out"), Path("/r.txt"), Path("/c.txt"))

    assert command[:3] == ["/opt/bin/uv", "pip", "install"]
    text = " ".join(command)
    assert "--python-platform aarch64-manylinux2014" in text
    assert "--python-version 3.12" in text
    assert "--only-binary :all:" in text
    assert "--target /out" in text


def test_without_pip_or_uv_bundling_says_what_to_install(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundling.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(bundling.shutil, "which", lambda name: None)
    with pytest.raises(BundlingError, match="no pip"):
        BundleSpec.for_lambda(root=project).install_command(Path("/out"), Path("/r.txt"), Path("/c.txt"))


def test_fingerprint_follows_code_and_requirements_but_not_caches(project: Path) -> None:
    before = BundleSpec.for_lambda(root=project).fingerprint()

    (project / "functions" / "core" / "__pycache__").mkdir()
    (project / "functions" / "core" / "__pycache__" / "layout.cpython-311.pyc").write_bytes(b"\0")
    assert BundleSpec.for_lambda(root=project).fingerprint() == before

    (project / "functions" / "core" / "layout.py").write_text("PREFIX = 'other'\n", encoding="utf-8")
    after_code = BundleSpec.for_lambda(root=project).fingerprint()
    assert after_code != before

    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8").replace("0.28.1", "0.28.2"), encoding="utf-8")
    assert BundleSpec.for_lambda(root=project).fingerprint() != after_code


def test_try_bundle_installs_then_copies_the_package(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "functions" / "core" / "__pycache__").mkdir()
    (project / "functions" / "core" / "__pycache__" / "layout.cpython-311.pyc").write_bytes(b"\0")
    calls: list[dict[str, str]] = []

    def fake_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        args = iter(command)
        options = {arg: next(args, "") for arg in args if arg in {"--requirement", "--constraint", "--target"}}
        calls.append(
            {
                key: Path(value).read_text(encoding="utf-8") if key != "--target" else value
                for key, value in options.items()
            }
        )
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(bundling.subprocess, "run", fake_run)
    output = tmp_path_factory.mktemp("bundle")

    assert LocalPythonBundling(BundleSpec.for_lambda(root=project)).try_bundle(
        str(output), image=cdk.DockerImage.from_registry("unused")
    )

    [call] = calls
    assert call["--target"] == str(output)
    assert call["--requirement"].split() == ["httpx==0.28.1", "pydantic==2.14.3"]
    assert call["--constraint"].split() == ["pydantic-core==2.50.4"]
    assert (output / "functions" / "core" / "layout.py").read_text(encoding="utf-8") == "PREFIX = 'possync'\n"
    assert not (output / "functions" / "core" / "__pycache__").exists()


def test_a_failed_install_fails_the_bundle_with_the_installer_output(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.CalledProcessError(1, command, "", "No matching distribution found for httpx==0.28.1")

    monkeypatch.setattr(bundling.subprocess, "run", failing_run)
    with pytest.raises(BundlingError, match="No matching distribution"):
        BundleSpec.for_lambda(root=project).build(tmp_path_factory.mktemp("bundle"))
