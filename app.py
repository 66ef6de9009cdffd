#!/usr/bin/env python3
"""The boxloop CDK app: one stack per environment (``-c env=dev`` by default, ``-c env=prod``)."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from infra.application import build_app
from infra.labelling_site import PageNotBuiltError
from infra.settings import SettingsError


def main() -> None:
    app = cdk.App()
    try:
        build_app(app)
    except (SettingsError, PageNotBuiltError) as exc:
        sys.exit(f"boxloop: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
