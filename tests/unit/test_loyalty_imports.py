"""The dependency direction, read from the sources' import statements: consumers import from functions.core only
(never from each other), and the pure loyalty rules import nothing that reaches AWS or a repository."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

from functions.core.layout import REEVALUATION_FUNCTION, RULE_FUNCTIONS

ROOT = Path(__file__).parents[2]
FUNCTIONS = ROOT / "functions"
CONSUMERS = sorted({*RULE_FUNCTIONS, REEVALUATION_FUNCTION, "optin", "pos_sync"})
PURE = ("values", "identity", "points", "stores")
# Modules that talk to AWS, or hold the item formats and repositories that do.
DATA_ACCESS = {
    "functions.core.aws",
    "functions.core.ddb_batch",
    "functions.core.store",
    "functions.core.sources",
    "functions.core.unmapped",
    "functions.core.notify",
    "functions.core.loyalty.codecs",
    "functions.core.loyalty.repository",
}
AWS_PACKAGES = ("boto3", "botocore", "aws_lambda_powertools")
# Persona -> POS sync writes through the vendor folders of the POSes that allow writes (one vendor's API knowledge
# lives in one folder); a consumer's folder is never among them, and neither is a read-only vendor's.
WRITE_VENDOR_FOLDERS = {"pos_sync": ("functions.pull_posabit", "functions.pull_flourish")}
READ_ONLY_VENDOR_FOLDERS = ("functions.pull_thsuite", "functions.pull_onprem")


def module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


@cache
def imports_of(name: str) -> frozenset[str]:
    """The modules one module imports (absolute names; `from a import b` counts a.b when that is a module)."""
    path = module_path(name)
    if path is None:
        return frozenset()
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if module_path(f"{node.module}.{a.name}"))
    return frozenset(found)


def reachable(name: str) -> set[str]:
    """Everything a module imports, directly or through other modules of this repository."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for imported in imports_of(todo.pop()):
            if imported in seen:
                continue
            seen.add(imported)
            if imported.startswith("functions."):
                todo.append(imported)
    return seen


def modules_under(folder: Path) -> list[str]:
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts) for p in folder.rglob("*.py"))


def test_the_loyalty_core_exists_with_its_pure_rules() -> None:
    for name in PURE:
        assert module_path(f"functions.core.loyalty.{name}") is not None, name


@pytest.mark.parametrize("name", PURE)
def test_pure_loyalty_rules_import_no_data_access(name: str) -> None:
    module = f"functions.core.loyalty.{name}"
    reached = reachable(module)
    assert not reached & DATA_ACCESS, f"{module} reaches {sorted(reached & DATA_ACCESS)}"
    assert not [m for m in reached if m.split(".")[0] in AWS_PACKAGES], f"{module} reaches an AWS package"


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_a_consumer_imports_from_core_only_never_another_consumer(consumer: str) -> None:
    folder = FUNCTIONS / consumer
    if not folder.exists():
        pytest.skip(f"functions/{consumer} is not built yet")
    for module in modules_under(folder):
        for imported in imports_of(module):
            if not imported.startswith("functions."):
                continue
            allowed = ("functions.core", f"functions.{consumer}", *WRITE_VENDOR_FOLDERS.get(consumer, ()))
            assert imported.startswith(allowed), f"{module} imports {imported}"


def test_persona_sync_reaches_no_read_only_vendor() -> None:
    # THSuite, Profitek and Auphan are read-only: nothing the pos_sync function imports can reach their folders
    reached = set().union(*(reachable(m) for m in modules_under(FUNCTIONS / "pos_sync")))
    assert "functions.pull_posabit.writer" in reached and "functions.pull_flourish.writer" in reached
    assert not [m for m in reached if m.startswith(READ_ONLY_VENDOR_FOLDERS)]


def test_the_core_imports_no_consumer() -> None:
    for module in modules_under(FUNCTIONS / "core"):
        for imported in imports_of(module):
            top = imported.split(".")[1] if imported.startswith("functions.") and "." in imported else ""
            assert top in ("", "core"), f"{module} imports {imported}"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    # the same reader over a file that breaks the rule (so the tests above could fail)
    bad = tmp_path / "bad.py"
    bad.write_text("from functions.enroll.handler import handler\nimport boto3\n")
    tree = ast.parse(bad.read_text())
    names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert names == {"functions.enroll.handler", "boto3"}
    assert "functions.core.loyalty.repository" in reachable("functions.core.loyalty.service")
