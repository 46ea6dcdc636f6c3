"""What is deployed is what is tested: every handler the template names imports from the bundled asset alone.

The bundle is built by the very `BundleSpec` the CDK asset uses, only for this machine's interpreter and CPU, and
each handler is imported by a fresh interpreter that sees the standard library and the bundle, nothing else: a
package present only in the dev environment (moto pulls in aws_xray_sdk, the CLI brings typer and rich) fails here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import BundleSpec
from tests.infra import cfn

pytestmark = pytest.mark.infra

CACHE_ROOT = Path(tempfile.gettempdir()) / "possync-bundles"
# Bundles of older code are removed once nobody has used them for this long (other checkouts share the cache).
CACHE_MAX_AGE_SECONDS = 2 * 24 * 3600
IMPORT_TIMEOUT_SECONDS = 300

# Runs in the fresh interpreter: prove the isolation, then import every handler and report what happened.
CHILD = r"""
import importlib, json, sys, traceback
asset, handlers = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, asset)
leaks = [p for p in sys.path if "site-packages" in p or "dist-packages" in p]
results = {}
for handler in handlers:
    module_name, _, attribute = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        target = getattr(module, attribute, None)
        results[handler] = "ok" if callable(target) else f"{module_name} has no callable {attribute!r}"
    except BaseException:
        results[handler] = traceback.format_exc(limit=-3)
foreign = sorted(
    name for name, module in sys.modules.items()
    if getattr(module, "__file__", None) and not module.__file__.startswith((asset, sys.base_prefix))
)
print(json.dumps({"sys_path": sys.path, "leaks": leaks, "results": results, "foreign": foreign}))
"""


def _cached_bundle(spec: BundleSpec) -> Path:
    """Build the bundle once per change of its contents (the spec's fingerprint), shared by test workers."""
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    _prune(CACHE_ROOT)
    bundle = CACHE_ROOT / f"py{spec.python_version}-{spec.machine}-{spec.fingerprint()}"
    if not bundle.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=f"{bundle.name}.", dir=CACHE_ROOT))
        spec.build(staging)
        try:
            staging.rename(bundle)  # atomic: a reader sees a whole bundle or none
        except OSError:  # another worker finished first; its bundle is the same
            shutil.rmtree(staging, ignore_errors=True)
    os.utime(bundle)
    return bundle


def _prune(root: Path) -> None:
    cutoff = time.time() - CACHE_MAX_AGE_SECONDS
    for entry in root.iterdir():
        if entry.is_dir() and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def _base_interpreter() -> str:
    """The interpreter the venv was made from: its own site-packages is all `-I -S` leaves out."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    if Path(base).resolve() == Path(sys.executable).resolve() and sys.prefix != sys.base_prefix:
        candidates = sorted(Path(sys.base_prefix, "bin").glob("python3*"))
        base = str(candidates[0]) if candidates else base
    return base


def handlers_in(template: dict[str, Any]) -> list[str]:
    return sorted({f["Properties"]["Handler"] for f in cfn.of_type(template, "AWS::Lambda::Function").values()})


@pytest.fixture(scope="module")
def bundle() -> Path:
    return _cached_bundle(BundleSpec.for_this_machine())


def _import_in_fresh_interpreter(asset: Path, handlers: list[str]) -> dict[str, Any]:
    result = subprocess.run(
        [_base_interpreter(), "-I", "-S", "-c", CHILD, str(asset), json.dumps(handlers)],
        cwd=tempfile.gettempdir(),
        # What Lambda provides; nothing that points Python at another package directory (-I ignores PYTHON* too).
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_REGION": "us-east-1", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_the_test_bundle_differs_from_the_lambda_bundle_only_in_platform() -> None:
    lambda_spec = BundleSpec.for_lambda()
    here = BundleSpec.for_this_machine()

    assert dataclasses.replace(lambda_spec, python_version=here.python_version, machine=here.machine) == here
    assert (here.python_version, here.machine) == (f"{sys.version_info.major}.{sys.version_info.minor}", os.uname()[4])


def test_every_handler_in_the_template_imports_from_the_bundle_alone(bundle: Path, template: dict[str, Any]) -> None:
    # Given the handlers the synthesized template names (not a list kept in this test)
    handlers = handlers_in(template)
    assert len(handlers) == len(cfn.of_type(template, "AWS::Lambda::Function")) >= 6

    # When a fresh interpreter with only the standard library and the bundle imports each of them
    report = _import_in_fresh_interpreter(bundle, handlers)

    # Then it saw no site-packages, and every handler module imported and has its entry point
    assert report["sys_path"][0] == str(bundle)
    assert report["leaks"] == [], f"the fresh interpreter can see installed packages: {report['leaks']}"
    failures = {handler: outcome for handler, outcome in report["results"].items() if outcome != "ok"}
    assert failures == {}, "\n\n".join(f"{handler}:\n{outcome}" for handler, outcome in failures.items())
    assert report["foreign"] == [], "modules were loaded from outside the bundle and the standard library"


def test_dev_only_packages_are_not_in_the_bundle(bundle: Path) -> None:
    for package in ("aws_xray_sdk", "moto", "typer", "rich", "cryptography", "pytest", "aws_cdk", "hypothesis"):
        assert not (bundle / package).exists(), f"{package} is a dev or CLI dependency and must not be bundled"
    assert (bundle / "functions" / "core" / "layout.py").is_file()
