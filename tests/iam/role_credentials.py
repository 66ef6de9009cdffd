"""Run Lambda handlers in moto with the credentials of their own synthesized role and IAM enforcement on.

Each handler's role becomes a moto IAM role with the function's resolved policy (``role_policies.moto_policy``);
the handler is wrapped so that, for the duration of one call, boto3's default session signs with that role's
assumed-role credentials and moto authorises every request (``enable_iam_authentication``). The test's own set-up and
checks run outside the calls, unenforced, as the account owner.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
from moto.core import enable_iam_authentication
from moto.iam.access_control import IAMRequestBase

from tests.iam.role_policies import moto_policy
from tests.moto_account import REGION

TRUST_ANY_USER = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}


@dataclass(frozen=True)
class RoleCredentials:
    """An assumed-role session of one function's role, and the requests moto authorised for it."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    authorised: list[tuple[str, str]] = field(default_factory=list)
    """``(action, resource)`` of every request moto authorised under these credentials (``s3:PutObject``, ARN)."""


def assume_function_role(template: Mapping[str, Any], handler: str, bucket_names: Mapping[str, str]) -> RoleCredentials:
    """Create ``handler``'s role in the mocked account with its synthesized policy and assume it."""
    return assume_role_with_policy(handler.replace(".", "-"), moto_policy(template, handler, bucket_names))


def assume_role_with_policy(role_name: str, policy: Mapping[str, Any]) -> RoleCredentials:
    """Create role ``role_name`` in the mocked account with ``policy`` as its one inline policy and assume it."""
    iam = boto3.client("iam", region_name=REGION)
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST_ANY_USER))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name, PolicyName="synthesized", PolicyDocument=json.dumps(policy))
    session = boto3.client("sts", region_name=REGION).assume_role(RoleArn=role_arn, RoleSessionName="handler")
    credentials = session["Credentials"]
    return RoleCredentials(credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])


@contextmanager
def acting_as(credentials: RoleCredentials) -> Iterator[None]:
    """Within the block, every client of boto3's default session signs with ``credentials``; moto enforces IAM.

    The adapters' cached clients and the tests' own clients share the default session's one credentials object,
    so switching it in place switches them all (a stubbed client keeps its stub).
    """
    shared = boto3._get_default_session()._session.get_credentials()
    saved = (shared.access_key, shared.secret_key, shared.token)
    shared.access_key, shared.secret_key, shared.token = (
        credentials.access_key_id,
        credentials.secret_access_key,
        credentials.session_token,
    )
    check = IAMRequestBase.check_action_permitted

    def check_and_record(request: IAMRequestBase, resource: str) -> None:
        check(request, resource)
        credentials.authorised.append((request._action, resource))

    IAMRequestBase.check_action_permitted = check_and_record
    try:
        with enable_iam_authentication():
            yield
    finally:
        IAMRequestBase.check_action_permitted = check
        shared.access_key, shared.secret_key, shared.token = saved


def under_role(handler_function: Callable, credentials: RoleCredentials) -> Callable:
    """``handler_function`` run with ``credentials`` under IAM enforcement."""

    @functools.wraps(handler_function)
    def enforced(*args, **kwargs):
        with acting_as(credentials):
            return handler_function(*args, **kwargs)

    enforced.unenforced = handler_function
    return enforced


def enforce_handler_roles(
    monkeypatch,
    template: Mapping[str, Any],
    handlers: Mapping[str, ModuleType],
    bucket_names: Mapping[str, str],
    callers: Iterable[ModuleType] = (),
) -> dict[str, RoleCredentials]:
    """Replace each ``module.handler`` (keyed by its synthesized command) with its role-enforced form; return each
    command's credentials (with the requests authorised so far).

    ``callers`` are test modules that imported a handler by name: their references are replaced too.
    """
    replacements = {}
    roles = {}
    for command, module in handlers.items():
        original = module.handler
        roles[command] = assume_function_role(template, command, bucket_names)
        replacements[id(original)] = under_role(original, roles[command])
        monkeypatch.setattr(module, "handler", replacements[id(original)])
    for caller in callers:
        for name, value in vars(caller).items():
            if id(value) in replacements:
                monkeypatch.setattr(caller, name, replacements[id(value)])
    return roles
