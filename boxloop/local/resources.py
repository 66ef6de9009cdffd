"""The stack's resources, created in moto from the synthesized CDK template.

moto's CloudFormation cannot run this stack as deployed (state machines it creates do not
execute, CDK's notification custom resource crashes on moto, assets must be uploaded by
hand; see notes/moto.md), so the local run reads the facts from the synthesized template
and creates the few resources that matter directly with boto3:

- S3 buckets, SQS queues (dead-letter queues and redrive policies first), DynamoDB tables
  (keys, GSIs), the SNS topic, IAM roles (moto does not enforce their policies, so only
  the roles themselves are created);
- every Lambda function whose code is our container image: the image's command (the
  ``Handler`` string, e.g. ``lambdas.loop.compute_threshold.handler``), its environment
  variables, memory and timeout. Locally the handler is imported from this project by
  ``lambda_runtime``; the function's zip only says so;
- the event wiring: ``Custom::S3BucketNotifications``' notification configuration is put
  on the bucket as is, and every SQS event-source mapping is created, except, in a stack with
  the A2I workforce, the human-review consumer's: locally ``human_workforce`` reads that queue
  instead (in a stack with the browser workforce the consumer records each batch for the local
  labelling app, ``labelling_server``);
- the state machine, with the synthesized definition resolved to plain ASL by
  ``infra.asl.resolve_definition`` with local names and ARNs substituted. It is the
  synthesized definition: nothing in it is changed for the local run.

CDK's own custom-resource Lambdas (inline Node.js) are not created: their effects are
applied directly (the notifications above) or have no moto counterpart (A2I's human task
UI and flow definition: locally the flow definition's name only names the
``a2i-output/<flow-definition-name>/`` folder the simulated workforce writes to). Nor are the
labelling site's CloudFront distribution, Cognito user pool and HTTP API: locally the labelling
app serves the page and calls the API's handler; a function variable or output that refers to
one of them (the API's ``SITE_ORIGIN``, the site's URL) is left out.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID

from boxloop.local.aws import LocalAws
from infra.asl import UnresolvedReference, resolve_definition, resolve_value

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ENVIRONMENT = "dev"
HUMAN_REVIEW_CONSUMER_HANDLER = "lambdas.human_review.consumer.handler"
"""With the A2I workforce the local run replaces it (by the simulated workforce driver): its queue is not mapped to it."""
LABELLING_API_HANDLER = "lambdas.labelling_api.handler.handler"
"""The labelling API (browser workforce): locally the labelling app calls it in-process."""
FLOW_DEFINITION_OUTPUT = "FlowDefinitionArn"
LOCAL_WORKFORCE = {
    "workforce": "a2i",
    "workteam_arn": f"arn:aws:sagemaker:us-east-1:{DEFAULT_ACCOUNT_ID}:workteam/private-crowd/boxloop-local",
}
"""The stack settings of the local run's simulated workforce: it stands in for A2I (it writes A2I's output
objects), so the local stack is synthesized with the ``a2i`` workforce on a local workteam."""
BROWSER_WORKFORCE = {"workforce": "browser", "workteam_arn": None}
"""The stack settings of a local run where people label in the local labelling app."""

_LOCAL_CODE_NOTE = (
    b"Locally this function's handler is imported from the boxloop project and called in-process "
    b"(boxloop.local.lambda_runtime); this archive holds no code.\n"
)


class TemplateError(ValueError):
    """The synthesized template lacks something the local run needs; the message names it."""


def synthesize_template(
    environment: str = DEFAULT_ENVIRONMENT,
    settings_overrides: Mapping[str, Any] | None = None,
    project_root: Path = PROJECT_ROOT,
    *,
    people: bool = False,
) -> dict[str, Any]:
    """Synthesize the stack of ``environment`` in-process (``cdk.json``'s context) and return its template.

    The stack is built exactly as ``app.py`` builds it (``BoxloopStack`` with the environment's
    settings); cdk-nag's checks are left out because they validate, and change nothing in, the
    template. The workforce is ``LOCAL_WORKFORCE`` (``BROWSER_WORKFORCE`` when ``people`` label); ``settings_overrides`` replace settings of the
    environment's ``cdk.json`` block (e.g. ``training_model``, ``training_max_seconds`` for a
    CPU-sized local run); they are validated like the block itself.
    """
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk

    from infra.settings import ENVIRONMENTS_CONTEXT_KEY, environment_settings
    from infra.stack import BoxloopStack

    context = {**json.loads((project_root / "cdk.json").read_text(encoding="utf-8"))["context"], "env": environment}
    environments = dict(context[ENVIRONMENTS_CONTEXT_KEY])
    workforce = BROWSER_WORKFORCE if people else LOCAL_WORKFORCE
    environments[environment] = {**environments.get(environment, {}), **workforce, **(settings_overrides or {})}
    context[ENVIRONMENTS_CONTEXT_KEY] = environments
    settings = environment_settings(context)
    with tempfile.TemporaryDirectory(prefix="boxloop-synth-") as outdir:
        app = cdk.App(context=context, outdir=outdir)
        stack = BoxloopStack(app, f"boxloop-{settings.name}", settings=settings)
        return app.synth().get_stack_by_name(stack.stack_name).template


# ------------------------------------------------------------------ the local resources


@dataclass(frozen=True)
class LocalResources:
    """Names and ARNs of what ``create_resources`` made; ``definition`` is the ASL that runs."""

    stack_name: str
    data_bucket: str
    state_machine_arn: str
    human_review_queue_url: str
    flow_definition_arn: str | None
    images_table: str
    runs_table: str
    idempotency_table: str
    function_names: dict[str, str]
    function_environment: dict[str, dict[str, str]]
    definition: dict[str, Any]
    skipped_event_source_mappings: tuple[str, ...]

    @property
    def flow_definition_name(self) -> str:
        if self.flow_definition_arn is None:
            raise TemplateError("the stack has no A2I flow definition (its workforce is not a2i)")
        return self.flow_definition_arn.rsplit("/", 1)[-1]

    @property
    def shared_environment(self) -> dict[str, str]:
        """The variables the adapters read: every function has the same tables, bucket and labelling defaults."""
        return next(iter(self.function_environment.values()))


def _resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == resource_type}


def _local_name(stack_name: str, logical_id: str, limit: int, lower: bool = False) -> str:
    name = f"{stack_name}-{logical_id}"
    return (name.lower() if lower else name)[:limit]


def _image_command(resource: dict[str, Any]) -> str | None:
    command = resource["Properties"].get("ImageConfig", {}).get("Command") or []
    return command[0] if command else None


def _custom_resource_call_parameters(resource: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    create = resolve_value(resource["Properties"]["Create"], values)
    return json.loads(create).get("parameters", {})


def _resolvable_variables(variables: Mapping[str, Any], values: dict[str, str]) -> dict[str, str]:
    """The variables whose values resolve locally; those naming a resource the local run does not create are left out."""
    resolved = {}
    for name, value in variables.items():
        try:
            resolved[name] = str(resolve_value(value, values))
        except UnresolvedReference:
            continue
    return resolved


def _creation_order(queues: dict[str, dict[str, Any]]) -> list[str]:
    """Dead-letter queues before the queues that redrive to them."""
    return sorted(queues, key=lambda lid: "RedrivePolicy" in queues[lid].get("Properties", {}))


def create_resources(
    aws: LocalAws,
    template: dict[str, Any],
    stack_name: str = "boxloop-dev",
    before_event_wiring: Callable[[str, list[str]], None] | None = None,
) -> LocalResources:
    """Create the template's resources (see the module docstring) in ``aws``; returns their local names.

    ``before_event_wiring(data bucket, [images, runs, idempotency table])`` runs once buckets,
    queues, tables and functions exist but no event reaches a function yet (e.g. to restore a
    saved state without re-triggering ingest).
    Resource names depend only on ``stack_name`` and the template's logical ids.
    """
    account, region = DEFAULT_ACCOUNT_ID, aws.region
    values: dict[str, str] = {
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack_name,
    }
    iam, s3, sqs, dynamodb, sns = (aws.client(name) for name in ("iam", "s3", "sqs", "dynamodb", "sns"))

    for logical_id, resource in _resources_of(template, "AWS::IAM::Role").items():
        name = _local_name(stack_name, logical_id, 64)
        document = resolve_value(resource["Properties"].get("AssumeRolePolicyDocument", {}), values)
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(document))["Role"]["Arn"]
        values[logical_id] = name
        values[f"{logical_id}.Arn"] = arn

    for logical_id in _resources_of(template, "AWS::S3::Bucket"):
        name = _local_name(stack_name, logical_id, 63, lower=True)
        s3.create_bucket(Bucket=name)
        values[logical_id] = name
        values[f"{logical_id}.Arn"] = f"arn:aws:s3:::{name}"

    queues = _resources_of(template, "AWS::SQS::Queue")
    for logical_id in _creation_order(queues):
        properties = resolve_value(queues[logical_id].get("Properties", {}), values)
        name = _local_name(stack_name, logical_id, 80)
        attributes = {
            key: json.dumps(properties[key]) if key == "RedrivePolicy" else str(properties[key])
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy")
            if key in properties
        }
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        values[logical_id] = url
        values[f"{logical_id}.Arn"] = f"arn:aws:sqs:{region}:{account}:{name}"
        values[f"{logical_id}.QueueName"] = name

    for logical_id, resource in _resources_of(template, "AWS::DynamoDB::Table").items():
        properties = resource["Properties"]
        name = _local_name(stack_name, logical_id, 255)
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if properties.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        arn = dynamodb.create_table(**request)["TableDescription"]["TableArn"]
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        values[logical_id] = name
        values[f"{logical_id}.Arn"] = arn

    for logical_id in _resources_of(template, "AWS::SNS::Topic"):
        arn = sns.create_topic(Name=_local_name(stack_name, logical_id, 256))["TopicArn"]
        values[logical_id] = arn
        values[f"{logical_id}.TopicArn"] = arn

    a2i_workforce = False
    for logical_id, resource in _resources_of(template, "Custom::AWS").items():
        parameters = _custom_resource_call_parameters(resource, values)
        if "FlowDefinitionName" in parameters:
            a2i_workforce = True
            name = parameters["FlowDefinitionName"]
            values[f"{logical_id}.{FLOW_DEFINITION_OUTPUT}"] = (
                f"arn:aws:sagemaker:{region}:{account}:flow-definition/{name}"
            )
        if "HumanTaskUiName" in parameters:
            name = parameters["HumanTaskUiName"]
            values[f"{logical_id}.HumanTaskUiArn"] = f"arn:aws:sagemaker:{region}:{account}:human-task-ui/{name}"

    functions = {lid: r for lid, r in _resources_of(template, "AWS::Lambda::Function").items() if _image_command(r)}
    state_machines = _resources_of(template, "AWS::StepFunctions::StateMachine")
    for logical_id, resource in state_machines.items():
        name = resource["Properties"].get("StateMachineName") or _local_name(stack_name, logical_id, 80)
        values[logical_id] = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
        values[f"{logical_id}.Name"] = name
    for logical_id in functions:
        name = _local_name(stack_name, logical_id, 64)
        values[logical_id] = name
        values[f"{logical_id}.Arn"] = f"arn:aws:lambda:{region}:{account}:function:{name}"

    lambda_client = aws.client("lambda")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("LOCAL.txt", _LOCAL_CODE_NOTE)
    function_environment: dict[str, dict[str, str]] = {}
    handlers: dict[str, str] = {}
    for logical_id, resource in functions.items():
        properties = resource["Properties"]
        variables = _resolvable_variables(properties.get("Environment", {}).get("Variables", {}), values)
        handlers[logical_id] = _image_command(resource) or ""
        lambda_client.create_function(
            FunctionName=values[logical_id],
            Runtime="python3.11",
            Role=resolve_value(properties["Role"], values),
            Handler=handlers[logical_id],
            Code={"ZipFile": archive.getvalue()},
            Description=properties.get("Description", ""),
            Timeout=int(properties.get("Timeout", 3)),
            MemorySize=int(properties.get("MemorySize", 128)),
            Environment={"Variables": variables},
        )
        function_environment[handlers[logical_id]] = variables

    shared = next(iter(function_environment.values()), {})
    for variable in ("DATA_BUCKET", "IMAGES_TABLE", "RUNS_TABLE", "IDEMPOTENCY_TABLE"):
        if variable not in shared:
            raise TemplateError(f"the Lambda functions have no {variable} variable")
    if before_event_wiring is not None:
        before_event_wiring(
            shared["DATA_BUCKET"], [shared["IMAGES_TABLE"], shared["RUNS_TABLE"], shared["IDEMPOTENCY_TABLE"]]
        )
    skipped = []
    for logical_id, resource in _resources_of(template, "AWS::Lambda::EventSourceMapping").items():
        properties = resource["Properties"]
        function_id = properties["FunctionName"]["Ref"]
        if handlers.get(function_id) == HUMAN_REVIEW_CONSUMER_HANDLER and a2i_workforce:
            skipped.append(logical_id)
            continue
        request = {
            "EventSourceArn": resolve_value(properties["EventSourceArn"], values),
            "FunctionName": values[function_id],
            "BatchSize": int(properties.get("BatchSize", 10)),
        }
        if "MaximumBatchingWindowInSeconds" in properties:
            request["MaximumBatchingWindowInSeconds"] = int(properties["MaximumBatchingWindowInSeconds"])
        if "FunctionResponseTypes" in properties:
            request["FunctionResponseTypes"] = properties["FunctionResponseTypes"]
        lambda_client.create_event_source_mapping(**request)

    for resource in _resources_of(template, "Custom::S3BucketNotifications").values():
        properties = resolve_value({k: v for k, v in resource["Properties"].items() if k != "ServiceToken"}, values)
        s3.put_bucket_notification_configuration(
            Bucket=properties["BucketName"], NotificationConfiguration=properties["NotificationConfiguration"]
        )

    sfn = aws.client("stepfunctions")
    if len(state_machines) != 1:
        raise TemplateError(f"expected one AWS::StepFunctions::StateMachine, the template has {len(state_machines)}")
    ((machine_id, machine),) = state_machines.items()
    definition = resolve_definition(template, values)
    role_arn = resolve_value(machine["Properties"]["RoleArn"], values)
    sfn.create_state_machine(name=values[f"{machine_id}.Name"], definition=json.dumps(definition), roleArn=role_arn)

    outputs = _resolvable_variables(
        {name: output["Value"] for name, output in template.get("Outputs", {}).items()}, values
    )
    required_outputs = ["DataBucketName", "StateMachineArn", "HumanReviewQueueUrl"]
    for required in required_outputs + ([FLOW_DEFINITION_OUTPUT] if a2i_workforce else []):
        if required not in outputs:
            raise TemplateError(f"the template has no output {required!r}; the local run finds resources by it")
    return LocalResources(
        stack_name=stack_name,
        data_bucket=outputs["DataBucketName"],
        state_machine_arn=outputs["StateMachineArn"],
        human_review_queue_url=outputs["HumanReviewQueueUrl"],
        flow_definition_arn=outputs.get(FLOW_DEFINITION_OUTPUT),
        images_table=shared["IMAGES_TABLE"],
        runs_table=shared["RUNS_TABLE"],
        idempotency_table=shared["IDEMPOTENCY_TABLE"],
        function_names={handlers[lid]: values[lid] for lid in functions},
        function_environment=function_environment,
        definition=definition,
        skipped_event_source_mappings=tuple(skipped),
    )
