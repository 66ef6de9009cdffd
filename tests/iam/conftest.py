"""The synthesized dev stack with the A2I workforce, and the default (browser workforce) dev stack, once per session.

The ingest, config and loop roles do not depend on the workforce; the consumer and answer roles of the A2I
workforce are the ones the human-review tests (A2I loops, ``a2i-output/``) exercise; the labelling API exists
with the browser workforce only.
"""

from __future__ import annotations

import os

import aws_cdk as cdk
import pytest

# Powertools reads these when the handler modules are imported, before any fixture runs.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "boxloop-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "boxloop")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from infra.application import build_app
from tests.infra.conftest import Synthesized, cdk_context, dev, labelling_page  # noqa: F401  (session fixtures)

A2I_WORKTEAM = "arn:aws:sagemaker:us-east-1:210987654321:workteam/private-crowd/boxloop-test"


@pytest.fixture(scope="session")
def dev_a2i(tmp_path_factory, labelling_page) -> Synthesized:  # noqa: F811
    """The dev stack synthesized with ``-c workforce=a2i -c workteam_arn=…``."""
    outdir = tmp_path_factory.mktemp("cdk-dev-a2i")
    context = {**cdk_context(), "env": "dev", "workforce": "a2i", "workteam_arn": A2I_WORKTEAM}
    app = cdk.App(context=context, outdir=str(outdir))
    stack = build_app(app)
    return Synthesized(template=app.synth().get_stack_by_name(stack.stack_name).template, outdir=outdir)
