"""Import every Lambda handler with only the Lambda image's requirements installed (reaches PyPI).

The project's own virtual environment holds everything (torch, moto, CDK …), so a handler that
imports a package ``lambdas/requirements.txt`` lacks passes every other test and fails on AWS. This
check builds a fresh virtual environment with the project's Python, installs only the Lambda
requirements into it (pip's cache keeps a rerun fast), stages what the image copies (``boxloop/``
without the local run, and ``lambdas/``) as the image's working directory, and imports each handler
the synthesized stacks name (every ``PackageType: Image`` function's command, ``module.function``)
in its own process, with its function's environment, as Lambda would.

    python -m deploy.check_lambda_imports cdk.out/boxloop-dev.template.json [--requirements FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from deploy.images import REPOSITORY_ROOT

LAMBDA_REQUIREMENTS = REPOSITORY_ROOT / "lambdas" / "requirements.txt"
STAGED_PACKAGES = ("boxloop", "lambdas")
STAGING_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "local")
IMPORT_HANDLER = "import importlib, sys; module, _, name = sys.argv[1].rpartition('.'); getattr(importlib.import_module(module), name)"


REFERENCE_STAND_IN = "check-deploy"
"""The value of an environment variable the template sets from another resource (a name or ARN known at deploy)."""


def image_handlers(templates: list[Path]) -> dict[str, dict[str, str]]:
    """Handler (``module.function``) → its function's environment, over the templates' image functions.

    A literal value is kept; one that refers to another resource becomes ``REFERENCE_STAND_IN``.
    """
    handlers: dict[str, dict[str, str]] = {}
    for template in templates:
        for resource in json.loads(template.read_text())["Resources"].values():
            properties = resource.get("Properties", {})
            if resource["Type"] != "AWS::Lambda::Function" or properties.get("PackageType") != "Image":
                continue
            (handler,) = properties["ImageConfig"]["Command"]
            variables = properties.get("Environment", {}).get("Variables", {})
            handlers.setdefault(handler, {}).update(
                {name: value if isinstance(value, str) else REFERENCE_STAND_IN for name, value in variables.items()}
            )
    return handlers


def stage_image_code(destination: Path) -> Path:
    """Copy what the Lambda image copies into its working directory; return it."""
    for package in STAGED_PACKAGES:
        shutil.copytree(REPOSITORY_ROOT / package, destination / package, ignore=STAGING_IGNORED)
    return destination


def lambda_environment(directory: Path, requirements: Path) -> Path:
    """A fresh virtual environment with only ``requirements`` installed; returns its python."""
    venv.EnvBuilder(with_pip=True, clear=True).create(directory)
    python = directory / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True, timeout=1800)
    return python


def import_failures(python: Path, task_root: Path, handlers: dict[str, dict[str, str]]) -> list[str]:
    """Each handler that does not import (with the error's last line), importing one per process."""
    failures = []
    for handler, variables in sorted(handlers.items()):
        environment = dict(variables)
        environment.update(PATH=os.environ.get("PATH", ""), AWS_DEFAULT_REGION="us-east-1")
        environment.update(LAMBDA_TASK_ROOT=str(task_root))
        completed = subprocess.run(
            [str(python), "-c", IMPORT_HANDLER, handler], cwd=task_root, env=environment, capture_output=True, text=True
        )
        if completed.returncode != 0:
            last_line = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
            failures.append(f"{handler}: {last_line}")
    return failures


def main(argv: list[str] | None = None) -> int:
    """Import the handlers of the given synthesized templates; exit 1 naming each that fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("templates", type=Path, nargs="+", help="synthesized stack templates (cdk.out/*.template.json)")
    parser.add_argument("--requirements", type=Path, default=LAMBDA_REQUIREMENTS, help="the Lambda requirements file")
    args = parser.parse_args(argv)
    handlers = image_handlers(args.templates)
    if not handlers:
        print(f"no Lambda image functions in {', '.join(map(str, args.templates))}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="boxloop-lambda-imports-") as scratch:
        python = lambda_environment(Path(scratch) / "venv", args.requirements)
        failures = import_failures(python, stage_image_code(Path(scratch) / "task"), handlers)
    for failure in failures:
        print(f"does not import with only {args.requirements.name}: {failure}", file=sys.stderr)
    if not failures:
        print(f"{len(handlers)} Lambda handlers import with only {args.requirements.name} installed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
