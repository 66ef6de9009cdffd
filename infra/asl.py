"""Resolve a synthesized state machine's ``DefinitionString`` to plain Amazon States Language.

The local run and the tests execute exactly the definition CDK synthesized: the
CloudFormation intrinsics in it (``Fn::Join``, ``Ref``, ``Fn::GetAtt``,
``Fn::Sub``, ``Fn::Select``, ``Fn::Split``) are evaluated with the values the
caller substitutes (``Ref``/``GetAtt`` names → local ARNs, names, URLs) and the
pseudo parameters (``AWS::Region``…).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

DEFAULT_PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "boxloop",
}


class UnresolvedReference(KeyError):
    """A ``Ref`` / ``Fn::GetAtt`` / ``${…}`` names something the substitutions do not give."""


def state_machine_resources(template: Mapping[str, Any]) -> dict[str, dict]:
    """The template's ``AWS::StepFunctions::StateMachine`` resources by logical id."""
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::StepFunctions::StateMachine"
    }


def resolve_definition(
    template: Mapping[str, Any], substitutions: Mapping[str, str], logical_id: str | None = None
) -> dict:
    """The state machine's definition as plain ASL (a dict).

    ``substitutions`` maps ``Ref`` targets (``"MyQueue"``), ``GetAtt`` targets
    (``"MyFunction.Arn"``) and pseudo parameters (``"AWS::Region"``, defaults in
    ``DEFAULT_PSEUDO_PARAMETERS``) to strings. ``logical_id`` picks the state
    machine when the template has several. Raises UnresolvedReference naming the
    first reference without a substitution.
    """
    machines = state_machine_resources(template)
    if logical_id is None:
        if len(machines) != 1:
            raise ValueError(f"the template has {len(machines)} state machines ({sorted(machines)}): name one")
        (logical_id,) = machines
    definition = machines[logical_id]["Properties"]["DefinitionString"]
    values = {**DEFAULT_PSEUDO_PARAMETERS, **substitutions}
    resolved = resolve_value(definition, values)
    if not isinstance(resolved, str):
        raise ValueError(f"{logical_id}: DefinitionString did not resolve to a string")
    return json.loads(resolved)


def resolve_value(value: Any, values: Mapping[str, str]) -> Any:
    """Evaluate the CloudFormation intrinsics in ``value`` (recursively)."""
    if isinstance(value, list):
        return [resolve_value(item, values) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {key: resolve_value(item, values) for key, item in value.items()}
    ((name, argument),) = value.items()
    if name == "Ref":
        return _lookup(argument, values)
    if name == "Fn::GetAtt":
        target = argument if isinstance(argument, str) else ".".join(argument)
        return _lookup(target, values)
    if name == "Fn::Join":
        separator, items = argument
        return separator.join(str(resolve_value(item, values)) for item in resolve_value(items, values))
    if name == "Fn::Select":
        index, items = argument
        return resolve_value(items, values)[int(resolve_value(index, values))]
    if name == "Fn::Split":
        separator, text = argument
        return str(resolve_value(text, values)).split(separator)
    if name == "Fn::Sub":
        return _substitute(argument, values)
    if name.startswith("Fn::"):
        raise ValueError(f"unsupported intrinsic {name} in the state machine definition")
    return {name: resolve_value(argument, values)}


def _lookup(name: str, values: Mapping[str, str]) -> str:
    if name not in values:
        raise UnresolvedReference(f"no substitution for {name!r}")
    return values[name]


def _substitute(argument: Any, values: Mapping[str, str]) -> str:
    if isinstance(argument, str):
        text, local = argument, {}
    else:
        text, variables = argument
        local = {key: str(resolve_value(item, values)) for key, item in variables.items()}

    def replace(match: re.Match) -> str:
        key = match.group(1)
        if key.startswith("!"):
            return "${" + key[1:] + "}"
        return local[key] if key in local else _lookup(key, values)

    return re.sub(r"\$\{([^}]+)\}", replace, text)
