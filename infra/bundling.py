"""Lambda bundling without Docker: install the runtime wheels for the Lambda platform, then add `functions`."""

from __future__ import annotations

import hashlib
import importlib.util
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from infra.constants import ARCHITECTURE, RUNTIME

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_PACKAGE = "functions"
# Bump when the bundle layout changes, so cached bundles in cdk.out are not reused.
BUNDLE_FORMAT = "1"
INSTALL_TIMEOUT_SECONDS = 900

_IGNORED = ("__pycache__", "*.pyc", "*.pyo")
_LAMBDA_MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}


class BundlingError(RuntimeError):
    pass


def runtime_requirements(pyproject: Path) -> tuple[str, ...]:
    """The Lambda dependencies are exactly `[project].dependencies`: one list for the venv and the bundle."""
    return tuple(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"])


def locked_versions(lock: Path) -> dict[str, str]:
    """Exact versions from uv.lock, so transitive dependencies in the bundle match the tested venv.

    A package locked at several versions (a split by Python version) is left to the resolver.
    """
    versions: dict[str, set[str]] = defaultdict(set)
    for package in tomllib.loads(lock.read_text(encoding="utf-8")).get("package", []):
        source = package.get("source", {})
        if "version" in package and not {"editable", "virtual"} & source.keys():
            versions[package["name"]].add(package["version"])
    return {name: found.pop() for name, found in sorted(versions.items()) if len(found) == 1}


@dataclass(frozen=True)
class BundleSpec:
    """What goes into the functions bundle and for which Lambda platform."""

    root: Path
    python_version: str
    machine: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]

    @classmethod
    def for_lambda(
        cls,
        runtime: lambda_.Runtime = RUNTIME,
        architecture: lambda_.Architecture = ARCHITECTURE,
        root: Path = REPO_ROOT,
    ) -> BundleSpec:
        """The bundle the CDK asset deploys: wheels for the Lambda runtime and architecture."""
        if not runtime.name.startswith("python3."):
            raise BundlingError(f"{runtime.name} is not a Python runtime")
        return cls._of(root, runtime.name.removeprefix("python"), _LAMBDA_MACHINE[architecture.name])

    @classmethod
    def for_this_machine(cls, root: Path = REPO_ROOT) -> BundleSpec:
        """The same bundle built for this interpreter and CPU, so a test can import from it here.

        Only the platform differs from `for_lambda`: the requirements, the constraints and the package are the same.
        """
        return cls._of(root, f"{sys.version_info.major}.{sys.version_info.minor}", platform.machine())

    @classmethod
    def _of(cls, root: Path, python_version: str, machine: str) -> BundleSpec:
        lock = root / "uv.lock"
        pins = locked_versions(lock) if lock.exists() else {}
        return cls(
            root=root,
            python_version=python_version,
            machine=machine,
            requirements=runtime_requirements(root / "pyproject.toml"),
            constraints=tuple(f"{name}=={version}" for name, version in pins.items()),
        )

    @property
    def package_dir(self) -> Path:
        return self.root / FUNCTIONS_PACKAGE

    def fingerprint(self) -> str:
        """Covers everything the bundle is made of, so an unchanged bundle is reused from cdk.out."""
        digest = hashlib.sha256()
        for part in (BUNDLE_FORMAT, self.python_version, self.machine, *self.requirements, *self.constraints):
            digest.update(part.encode() + b"\0")
        for path in sorted(self._package_files()):
            digest.update(path.relative_to(self.root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def install_command(self, target: Path, requirements: Path, constraints: Path) -> list[str]:
        """pip from this venv when it has one, else uv (a uv-made venv has no pip); binary wheels only."""
        if importlib.util.find_spec("pip") is not None:
            return [
                sys.executable, "-m", "pip", "install",
                "--quiet", "--disable-pip-version-check", "--no-compile", "--no-input",
                "--platform", f"manylinux2014_{self.machine}",
                "--implementation", "cp",
                "--python-version", self.python_version,
                "--only-binary=:all:",
                "--target", str(target),
                "--requirement", str(requirements),
                "--constraint", str(constraints),
            ]  # fmt: skip
        uv = shutil.which("uv")
        if uv is None:
            raise BundlingError(
                "cannot bundle the Lambda dependencies: this venv has no pip and uv is not on PATH; "
                "install pip into the venv (add it to the dev dependency group) or put uv on PATH"
            )
        return [
            uv, "pip", "install",
            "--quiet",
            "--python", sys.executable,
            "--python-platform", f"{self.machine}-manylinux2014",
            "--python-version", self.python_version,
            "--only-binary", ":all:",
            "--target", str(target),
            "--requirement", str(requirements),
            "--constraint", str(constraints),
        ]  # fmt: skip

    def build(self, output_dir: Path) -> None:
        """Install the wheels into output_dir, then copy the functions package beside them."""
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="possync-bundle-") as tmp:
            requirements = Path(tmp, "requirements.txt")
            constraints = Path(tmp, "constraints.txt")
            requirements.write_text("\n".join(self.requirements) + "\n", encoding="utf-8")
            constraints.write_text("\n".join(self.constraints) + "\n", encoding="utf-8")
            command = self.install_command(output_dir, requirements, constraints)
            try:
                subprocess.run(  # noqa: S603 - fixed argument list, no shell
                    command, check=True, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS
                )
            except subprocess.CalledProcessError as exc:
                raise BundlingError(
                    f"installing the Lambda dependencies failed (exit {exc.returncode}):\n{exc.stderr[-4000:]}"
                ) from exc
        shutil.copytree(self.package_dir, output_dir / FUNCTIONS_PACKAGE, ignore=shutil.ignore_patterns(*_IGNORED))
        print(  # the CDK CLI shows the app's stderr while it bundles
            f"bundled {len(self.requirements)} requirements for python{self.python_version}/{self.machine} "
            f"and the {FUNCTIONS_PACKAGE} package in {time.monotonic() - started:.1f}s",
            file=sys.stderr,
        )

    def _package_files(self) -> list[Path]:
        return [
            path
            for path in self.package_dir.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}
        ]


@jsii.implements(cdk.ILocalBundling)
class LocalPythonBundling:
    """Bundles on this machine; raising (rather than returning False) keeps CDK from falling back to Docker."""

    def __init__(self, spec: BundleSpec) -> None:
        self.spec = spec

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **options: Any) -> bool:
        self.spec.build(Path(output_dir))
        return True


def functions_code(spec: BundleSpec | None = None) -> lambda_.Code:
    """One asset for every possync Lambda: create it once per stack and share it, so it is bundled once.

    Synthesizing with the context `"aws:cdk:bundling-stacks": []` (the unit tests) skips bundling and
    points the asset at the source folder.
    """
    spec = spec or BundleSpec.for_lambda()
    return lambda_.Code.from_asset(
        str(spec.package_dir),
        asset_hash=spec.fingerprint(),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=cdk.BundlingOptions(image=RUNTIME.bundling_image, local=LocalPythonBundling(spec)),
    )
