"""One synth per environment per test session, with cdk.json's context (feature flags included)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest

from infra.application import build_app
from infra.asl import resolve_definition
from infra.labelling_site import PAGE_BUILD, built_page

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Synthesized:
    """One environment's synthesized stack."""

    template: dict
    outdir: Path

    @property
    def resources(self) -> dict[str, dict]:
        return self.template["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def asl(self) -> dict:
        """The state machine's definition as plain ASL, every reference replaced by ``<logical id>[.attr]``."""
        return resolve_definition(self.template, substitutions=_stand_in_references(self.template))


def _stand_in_references(template: dict) -> dict[str, str]:
    values: dict[str, str] = {}
    for logical_id in template["Resources"]:
        values[logical_id] = logical_id
        for attribute in ("Arn", "QueueUrl", "QueueName", "TopicArn"):
            values[f"{logical_id}.{attribute}"] = f"arn:aws:test:us-east-1:123456789012:{logical_id}"
    return values


def cdk_context() -> dict:
    return json.loads((REPOSITORY_ROOT / "cdk.json").read_text())["context"]


def synthesize(env: str, outdir: Path) -> Synthesized:
    app = cdk.App(context={**cdk_context(), "env": env}, outdir=str(outdir))
    stack = build_app(app)
    assembly = app.synth()
    return Synthesized(template=assembly.get_stack_by_name(stack.stack_name).template, outdir=outdir)


@pytest.fixture(scope="session")
def labelling_page() -> Path:
    """The built labelling page the stack deploys (``npm run build:web`` runs once when it is missing)."""
    if not (PAGE_BUILD / "index.html").is_file():
        subprocess.run(["npm", "run", "build:web"], cwd=REPOSITORY_ROOT, check=True)
    return built_page(PAGE_BUILD)


@pytest.fixture(scope="session")
def dev(tmp_path_factory, labelling_page) -> Synthesized:
    return synthesize("dev", tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory, labelling_page) -> Synthesized:
    return synthesize("prod", tmp_path_factory.mktemp("cdk-prod"))
