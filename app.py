#!/usr/bin/env python3
"""The boxloop CDK app: one stack per environment (``-c env=dev`` by default, ``-c env=prod``)."""

from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.settings import SettingsError, environment_settings
from infra.stack import BoxloopStack


def build_app(app: cdk.App) -> BoxloopStack:
    """Add the stack of the environment the context names, and cdk-nag's AwsSolutions checks."""
    context = {
        key: app.node.try_get_context(key)
        for key in ("env", "boxloop:environments", "workteam_arn", "alarm_email")
    }
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


def main() -> None:
    app = cdk.App()
    try:
        build_app(app)
    except SettingsError as exc:
        sys.exit(f"boxloop: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
