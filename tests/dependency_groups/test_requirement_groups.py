"""pyproject.toml's dependency groups: pinned once, the Lambda image's requirements equal to its group, and every
third-party module a deployed part imports (followed through the boxloop modules it imports) covered by its group.

The import graph is read with ``ast`` from the source files; nothing is installed or imported.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "boxloop"
FIRST_PARTY = ("boxloop", "lambdas", "sagemaker_jobs", "infra")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[a-z0-9,_-]+\])?==(?P<version>\S+)$")
SELF_REFERENCE = re.compile(rf"^{PROJECT}\[(?P<extras>[a-z0-9,_-]+)\]$")
DEPLOYED_PARTS = {
    # part: (the source files its image runs, the extra installed there beside the core dependencies)
    "lambda": (["lambdas"], "lambda"),
    "detector": (["sagemaker_jobs"], "detector"),
    "cdk": (["infra", "app.py"], "cdk"),
}


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def groups() -> dict[str, list[str]]:
    """The core dependencies (as ``""``) and each extra, as written."""
    return {"": project()["dependencies"], **project()["optional-dependencies"]}


def pins(requirements: Iterable[str]) -> dict[str, str]:
    """Distribution name → its whole pin (``name[extras]==version``); self references are left out."""
    found = {}
    for requirement in requirements:
        if SELF_REFERENCE.match(requirement):
            continue
        match = PIN.match(requirement)
        assert match, f"{requirement!r} is not pinned as name[extras]==version"
        found[normalise(match["name"])] = requirement
    return found


def installed_by(extra: str) -> set[str]:
    """The extras that ``pip install boxloop[extra]`` installs, following self references."""
    reached, pending = set(), [extra]
    while pending:
        current = pending.pop()
        if current in reached:
            continue
        reached.add(current)
        for requirement in groups()[current]:
            match = SELF_REFERENCE.match(requirement)
            if match:
                pending.extend(match["extras"].split(","))
    return reached


def requirement_file_lines(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def source_modules(paths: Iterable[str]) -> Iterator[str]:
    for relative in paths:
        path = ROOT / relative
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            yield ".".join(file.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imported_names(module: str, file: Path) -> Iterator[str]:
    """Every module name ``file`` imports (relative imports resolved), at any depth of the code."""
    package = module.split(".") if file.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*parent, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # `from boxloop import report`


def third_party_imports(paths: Iterable[str]) -> dict[str, set[str]]:
    """Top-level third-party module → the first-party modules importing it, over the import graph of ``paths``."""
    seen: set[str] = set()
    third_party: dict[str, set[str]] = {}
    pending = list(source_modules(paths))
    while pending:
        module = pending.pop()
        file = module_file(module)
        if module in seen or file is None:
            continue
        seen.add(module)
        for name in imported_names(module, file):
            parts = name.split(".")
            if parts[0] in FIRST_PARTY:
                pending.extend(".".join(parts[:depth]) for depth in range(1, len(parts) + 1))  # packages run __init__
            elif parts[0] not in sys.stdlib_module_names and parts[0] != "__future__":
                third_party.setdefault(parts[0], set()).add(module)
    return third_party


@cache
def distributions_of_modules() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def unconditional_requirements(distribution: str) -> set[str]:
    """The distributions ``distribution`` itself always installs (its requirements outside any extra)."""
    names = set()
    for requirement in importlib.metadata.requires(distribution) or []:
        if "extra ==" not in requirement:
            names.add(normalise(re.match(r"[A-Za-z0-9._-]+", requirement)[0]))
    return names


def test_each_distribution_has_one_pin_in_every_group_and_requirements_file():
    written: dict[str, set[str]] = {}
    for requirements in groups().values():
        for name, pin in pins(requirements).items():
            written.setdefault(name, set()).add(pin)
    files = sorted(path for path in ROOT.glob("*/requirements*.txt") if path.parent.name in FIRST_PARTY)
    assert ROOT / "lambdas" / "requirements.txt" in files
    for path in files:
        for name, pin in pins(requirement_file_lines(path)).items():
            assert name in written, f"{path.relative_to(ROOT)}: {pin} is in no group of pyproject.toml"
            written[name].add(pin)
    assert {name: sorted(found) for name, found in written.items() if len(found) > 1} == {}


def test_lambda_requirements_are_the_core_plus_the_lambda_extra():
    lines = requirement_file_lines(ROOT / "lambdas" / "requirements.txt")
    assert len(lines) == len(set(lines)), "a requirement is listed twice"
    assert set(lines) == set(project()["dependencies"]) | set(project()["optional-dependencies"]["lambda"])


def test_dev_installs_every_group():
    assert installed_by("dev") == set(groups()) - {""}


@pytest.mark.parametrize("part", sorted(DEPLOYED_PARTS))
def test_every_third_party_import_of_a_deployed_part_is_in_its_group(part: str):
    paths, extra = DEPLOYED_PARTS[part]
    declared = set(pins(project()["dependencies"])) | set(pins(groups()[extra]))
    provided = declared | {name for dist in declared for name in unconditional_requirements(dist)}
    imports = third_party_imports(paths)
    assert imports, f"no third-party import found under {paths}"
    missing = {}
    for module, importers in sorted(imports.items()):
        distributions = {normalise(dist) for dist in distributions_of_modules().get(module, [])}
        if not distributions & provided:
            missing[module] = sorted(importers)
    assert missing == {}, f"imported by {part} but not installed by pyproject's core + {extra!r} dependencies"


def test_the_lambda_image_leaves_out_the_heavy_groups():
    lambda_set = set(pins(project()["dependencies"])) | set(pins(groups()["lambda"]))
    assert not lambda_set & {"torch", "torchvision", "moto", "aws-cdk-lib", "scikit-image", "scikit-learn"}
