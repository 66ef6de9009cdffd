"""Build the boxloop CDK app: the stack of the environment the context names, checked by cdk-nag."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.settings import ENVIRONMENTS_CONTEXT_KEY, OVERRIDABLE_KEYS, environment_settings
from infra.stack import BoxloopStack


def build_app(app: cdk.App) -> BoxloopStack:
    """Add the stack of the environment the context names, and cdk-nag's AwsSolutions checks."""
    context = {key: app.node.try_get_context(key) for key in ("env", ENVIRONMENTS_CONTEXT_KEY, *OVERRIDABLE_KEYS)}
    settings = environment_settings(context)
    stack = BoxloopStack(
        app,
        f"boxloop-{settings.name}",
        settings=settings,
        description=f"boxloop active-learning labeller ({settings.name})",
    )
    cdk.Tags.of(stack).add("project", "boxloop")
    cdk.Tags.of(stack).add("environment", settings.name)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack
