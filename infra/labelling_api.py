"""The labelling API on AWS: an HTTP API with a Cognito JWT authorizer in front of the API Lambda.

Every route of the labelling HTTP contract (``/api/...``) needs a valid token of the labellers' pool
issued to the page's client; CORS admits the site's origin only; the stage throttles and writes JSON
access logs. The Lambda may read task images (``images/…``, where the pool's ``source-ref``s point),
write answers (``answers/…``), use the task table and read the run's state (budget) — nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import jsii
from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from boxloop.layout import BROWSER_ANSWERS_PREFIX, IMAGES_PREFIX
from infra.labellers import Labellers
from infra.labelling_tasks import CLAIMABLE_INDEX, LABELLING_TABLE_ENV
from infra.lambda_image import container_function
from infra.nag import acknowledge, arn_token
from infra.settings import EnvironmentSettings
from infra.storage import Storage

API_HANDLER = "lambdas.labelling_api.handler.handler"
IMAGE_URL_SECONDS = 300
API_TIMEOUT = Duration.seconds(29)
THROTTLE_RATE_PER_SECOND = 50
THROTTLE_BURST = 100

TASK_TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
]
"""Read, page, claim (Query on ``claimable`` + conditional update) and answer tasks; no Scan, no Delete."""
RUNS_TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
"""Read the active run, its state (budget) and its batch records."""

ROUTES: tuple[tuple[str, apigwv2.HttpMethod], ...] = (
    ("/api/batch", apigwv2.HttpMethod.GET),
    ("/api/tasks", apigwv2.HttpMethod.GET),
    ("/api/claims", apigwv2.HttpMethod.POST),
    ("/api/claims/{task_id}", apigwv2.HttpMethod.DELETE),
    ("/api/tasks/{task_id}", apigwv2.HttpMethod.GET),
    ("/api/tasks/{task_id}/answer", apigwv2.HttpMethod.POST),
)
"""The routes of the labelling HTTP contract (the page's ``api_base`` is the stage URL + ``api``)."""

ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
    "worker": "$context.authorizer.claims.sub",
    "authorizerError": "$context.authorizer.error",
    "integrationError": "$context.integrationErrorMessage",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class JsonAccessLogs:
    """Stage access logs: one JSON line of ``ACCESS_LOG_FIELDS`` per request into ``log_group``."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._log_group = log_group

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return apigwv2.LogGroupLogDestination(self._log_group)

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS))


class LabellingApi(Construct):
    """API Lambda (container image) behind an HTTP API stage with a JWT authorizer on every route."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        storage: Storage,
        task_table: dynamodb.ITable,
        labellers: Labellers,
        site_origin: str,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        bucket = storage.data_bucket
        self.function = container_function(
            self,
            "ApiFunction",
            handler=API_HANDLER,
            description="The labelling page's API: batch, task list, claims, tasks, answers",
            service_name="boxloop-labelling-api",
            environment={
                **environment,
                LABELLING_TABLE_ENV: task_table.table_name,
                "SITE_ORIGIN": site_origin,
                "IMAGE_URL_SECONDS": str(IMAGE_URL_SECONDS),
            },
            settings=settings,
            timeout=API_TIMEOUT,
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{IMAGES_PREFIX}*")])
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{BROWSER_ANSWERS_PREFIX}*")]
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=TASK_TABLE_ACTIONS,
                resources=[task_table.table_arn, f"{task_table.table_arn}/index/{CLAIMABLE_INDEX}"],
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=RUNS_TABLE_ACTIONS, resources=[storage.runs_table.table_arn])
        )
        acknowledge(
            self.function,
            "AwsSolutions-IAM5",
            "The API presigns GETs of task images (images/<sha256>.<ext>) and writes one answer object per task "
            "(answers/<run>/<iteration>/<task>/output.json); keys are chosen at run time.",
            [
                f"Resource::{arn_token(bucket)}/{IMAGES_PREFIX}*",
                f"Resource::{arn_token(bucket)}/{BROWSER_ANSWERS_PREFIX}*",
            ],
        )

        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"boxloop-{settings.name}-labelling",
            description="boxloop labelling page API (Cognito JWT on every route)",
            create_default_stage=False,
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=[site_origin],
                allow_methods=[apigwv2.CorsHttpMethod.GET, apigwv2.CorsHttpMethod.POST, apigwv2.CorsHttpMethod.DELETE],
                allow_headers=["authorization", "content-type"],
                max_age=Duration.hours(1),
            ),
        )
        access_logs = logs.LogGroup(self, "AccessLogs", retention=getattr(logs.RetentionDays, settings.log_retention))
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=THROTTLE_RATE_PER_SECOND, burst_limit=THROTTLE_BURST),
            access_log_settings=JsonAccessLogs(access_logs),
        )
        authorizer = authorizers.HttpUserPoolAuthorizer(
            "LabellersAuthorizer", labellers.user_pool, user_pool_clients=[labellers.client]
        )
        integration = integrations.HttpLambdaIntegration(
            "ApiIntegration", self.function, payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0
        )
        for path, method in ROUTES:
            self.http_api.add_routes(path=path, methods=[method], integration=integration, authorizer=authorizer)

    @property
    def api_base(self) -> str:
        """What the page prefixes its ``/batch``, ``/tasks``… calls with: ``https://<api>.execute-api…/api``."""
        return f"{self.stage.url}api"
