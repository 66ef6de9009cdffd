"""The browser workforce on AWS: page on S3 + CloudFront (OAC), Cognito sign-in, the JWT-authorized HTTP API,
the task table and least-privilege access; none of it when the environment's workforce is A2I."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest

from infra.application import build_app
from infra.asl import DEFAULT_PSEUDO_PARAMETERS, resolve_value
from infra.labelling_site import PageNotBuiltError, built_page
from tests.infra.conftest import Synthesized, cdk_context

CONTRACT_ROUTES = {
    "GET /api/batch",
    "GET /api/tasks",
    "POST /api/claims",
    "DELETE /api/claims/{task_id}",
    "GET /api/tasks/{task_id}",
    "POST /api/tasks/{task_id}/answer",
}


class _Names(dict):
    """Resolves every ``Ref`` / ``Fn::GetAtt`` to its own name (``Logical.Attr``), pseudo parameters to values."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return key


STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/boxloop-dev/0a1b2c3d-0000-4000-8000-000000000000"


def resolve(value):
    return resolve_value(value, _Names({**DEFAULT_PSEUDO_PARAMETERS, "AWS::StackId": STACK_ID}))


def only(synthesized: Synthesized, resource_type: str) -> tuple[str, dict]:
    (item,) = synthesized.of_type(resource_type).items()
    return item


def logical_id(synthesized: Synthesized, resource_type: str) -> str:
    return only(synthesized, resource_type)[0]


def function_named(synthesized: Synthesized, handler: str) -> str:
    (name,) = [
        key
        for key, function in synthesized.of_type("AWS::Lambda::Function").items()
        if function["Properties"].get("ImageConfig", {}).get("Command") == [handler]
    ]
    return name


def role_statements(synthesized: Synthesized, function_id: str) -> list[dict]:
    role = synthesized.resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synthesized.of_type("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def task_table_id(synthesized: Synthesized) -> str:
    (table_id,) = [
        key
        for key, table in synthesized.of_type("AWS::DynamoDB::Table").items()
        if "claimable" in {index["IndexName"] for index in table["Properties"].get("GlobalSecondaryIndexes", [])}
    ]
    return table_id


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def a2i(tmp_path_factory, labelling_page) -> Synthesized:
    context = cdk_context()
    context["boxloop:environments"]["dev"].update(
        workforce="a2i", workteam_arn="arn:aws:sagemaker:us-east-1:210987654321:workteam/private-crowd/labellers"
    )
    outdir = tmp_path_factory.mktemp("cdk-dev-a2i")
    app = cdk.App(context={**context, "env": "dev"}, outdir=str(outdir))
    stack = build_app(app)
    return Synthesized(template=app.synth().get_stack_by_name(stack.stack_name).template, outdir=outdir)


def test_page_bucket_is_private_and_readable_only_by_its_distribution(dev):
    distribution_id, distribution = only(dev, "AWS::CloudFront::Distribution")
    oac_id, oac = only(dev, "AWS::CloudFront::OriginAccessControl")
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    config = distribution["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert resolve(origin["OriginAccessControlId"]) == f"{oac_id}.Id"
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""
    page_bucket = resolve(origin["DomainName"]).removesuffix(".RegionalDomainName")
    bucket = dev.resources[page_bucket]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())

    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in dev.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": page_bucket}
    ]
    (allow,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert resolve(allow["Condition"]["StringEquals"]["AWS:SourceArn"]) == (
        f"arn:aws:cloudfront::123456789012:distribution/{distribution_id}"
    )


def test_distribution_https_only_with_security_headers_and_root_object(dev):
    config = only(dev, "AWS::CloudFront::Distribution")[1]["Properties"]["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "https-only"
    assert config["Logging"]["Prefix"]
    headers_id, headers = only(dev, "AWS::CloudFront::ResponseHeadersPolicy")
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": headers_id}
    security = headers["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert security["ContentTypeOptions"]["Override"] is True
    csp = resolve(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "https://*.execute-api.us-east-1.amazonaws.com" in directives["connect-src"].split()
    assert "https://boxloop-dev-0a1b2c3d.auth.us-east-1.amazoncognito.com" in directives["connect-src"].split()


def test_every_contract_route_needs_the_labellers_jwt(dev):
    authorizer_id, authorizer = only(dev, "AWS::ApiGatewayV2::Authorizer")
    props = authorizer["Properties"]
    assert props["AuthorizerType"] == "JWT"
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    pool_id = logical_id(dev, "AWS::Cognito::UserPool")
    client_id = logical_id(dev, "AWS::Cognito::UserPoolClient")
    assert resolve(props["JwtConfiguration"]["Issuer"]) == f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"
    assert props["JwtConfiguration"]["Audience"] == [{"Ref": client_id}]

    routes = [r["Properties"] for r in dev.of_type("AWS::ApiGatewayV2::Route").values()]
    assert {r["RouteKey"] for r in routes} == CONTRACT_ROUTES
    assert all(r["AuthorizationType"] == "JWT" and r["AuthorizerId"] == {"Ref": authorizer_id} for r in routes)
    api_function = function_named(dev, "lambdas.labelling_api.handler.handler")
    (integration,) = dev.of_type("AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    assert resolve(integration["Properties"]["IntegrationUri"]) == f"{api_function}.Arn"


def test_cors_admits_only_the_site_and_the_stage_logs_and_throttles(dev):
    distribution_id = logical_id(dev, "AWS::CloudFront::Distribution")
    site_origin = f"https://{distribution_id}.DomainName"
    cors = only(dev, "AWS::ApiGatewayV2::Api")[1]["Properties"]["CorsConfiguration"]
    assert resolve(cors["AllowOrigins"]) == [site_origin]
    stage = only(dev, "AWS::ApiGatewayV2::Stage")[1]["Properties"]
    assert stage["StageName"] == "$default"
    assert "$context.requestId" in stage["AccessLogSettings"]["Format"]
    assert stage["AccessLogSettings"]["DestinationArn"]
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    api_function = function_named(dev, "lambdas.labelling_api.handler.handler")
    env = dev.resources[api_function]["Properties"]["Environment"]["Variables"]
    assert resolve(env["SITE_ORIGIN"]) == site_origin
    assert {"LABELLING_TABLE", "DATA_BUCKET", "RUNS_TABLE", "IMAGE_URL_SECONDS"} <= set(env)


def test_page_client_signs_in_with_code_grant_and_pkce_only(dev):
    client = only(dev, "AWS::Cognito::UserPoolClient")[1]["Properties"]
    assert client["GenerateSecret"] is False
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert set(client["ExplicitAuthFlows"]) <= {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    site_url = f"https://{logical_id(dev, 'AWS::CloudFront::Distribution')}.DomainName/"
    assert resolve(client["CallbackURLs"]) == [site_url]
    assert resolve(client["LogoutURLs"]) == [site_url]

    pool = only(dev, "AWS::Cognito::UserPool")[1]["Properties"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == "OPTIONAL"
    assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
    assert pool["UserPoolAddOns"]["AdvancedSecurityMode"] == "ENFORCED"
    (group,) = dev.of_type("AWS::Cognito::UserPoolGroup").values()
    assert group["Properties"]["GroupName"] == "labellers"
    domain = only(dev, "AWS::Cognito::UserPoolDomain")[1]["Properties"]
    assert domain["ManagedLoginVersion"] == 2
    assert resolve(domain["Domain"]) == "boxloop-dev-0a1b2c3d"


def test_api_role_reads_only_images_and_writes_only_answers(dev):
    api_function = function_named(dev, "lambdas.labelling_api.handler.handler")
    statements = role_statements(dev, api_function)
    data_bucket = next(k for k in dev.of_type("AWS::S3::Bucket") if k.startswith("StorageDataBucket"))
    s3_access = {
        (action, resolve(resource))
        for statement in statements
        for action in as_list(statement["Action"])
        if action.startswith("s3:")
        for resource in as_list(statement["Resource"])
    }
    assert s3_access == {
        ("s3:GetObject", f"{data_bucket}.Arn/images/*"),
        ("s3:PutObject", f"{data_bucket}.Arn/answers/*"),
    }
    dynamodb_actions = {a for s in statements for a in as_list(s["Action"]) if a.startswith("dynamodb:")}
    assert "dynamodb:Query" in dynamodb_actions
    assert not dynamodb_actions & {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:DeleteTable"}
    assert all(statement["Effect"] == "Allow" for statement in statements)


def test_task_table_keys_claimable_index_and_expiry(dev, prod):
    for synthesized, pitr in ((dev, False), (prod, True)):
        table = synthesized.resources[task_table_id(synthesized)]["Properties"]
        assert table["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        (index,) = table["GlobalSecondaryIndexes"]
        assert index["KeySchema"] == [
            {"AttributeName": "claim_pk", "KeyType": "HASH"},
            {"AttributeName": "available_at", "KeyType": "RANGE"},
        ]
        assert index["Projection"] == {"ProjectionType": "ALL"}
        types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
        assert types == {"pk": "S", "sk": "S", "claim_pk": "S", "available_at": "N"}
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["SSESpecification"]["SSEEnabled"] is True
        assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
        assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is pitr


def test_consumer_records_batches_and_answers_reach_the_answer_lambda(dev):
    table_id = task_table_id(dev)
    consumer = function_named(dev, "lambdas.human_review.consumer.handler")
    env = dev.resources[consumer]["Properties"]["Environment"]["Variables"]
    assert env["LABELLING_TABLE"] == {"Ref": table_id}
    on_task_table = [
        s
        for s in role_statements(dev, consumer)
        if any(str(r).startswith(table_id) for r in as_list(resolve(s["Resource"])))
    ]
    assert {a for s in on_task_table for a in as_list(s["Action"])} == {
        "dynamodb:GetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",
    }

    answer = function_named(dev, "lambdas.human_review.answer.handler")
    (notifications,) = dev.of_type("Custom::S3BucketNotifications").values()
    configurations = notifications["Properties"]["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    filters = {
        frozenset((r["Name"], r["Value"]) for r in c["Filter"]["Key"]["FilterRules"])
        for c in configurations
        if resolve(c["LambdaFunctionArn"]) == f"{answer}.Arn"
    }
    assert frozenset({("prefix", "answers/"), ("suffix", "output.json")}) in filters


def test_config_json_names_the_api_the_sign_in_and_the_site(dev):
    (deployment,) = dev.of_type("Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    (markers,) = [m for m in props["SourceMarkers"] if m]
    (key,) = [k for k, m in zip(props["SourceObjectKeys"], props["SourceMarkers"], strict=True) if m]
    text = (dev.outdir / f"asset.{key.removesuffix('.zip')}" / "config.json").read_text()
    for marker, value in markers.items():
        text = text.replace(marker, resolve(value))
    config = json.loads(text)
    api = logical_id(dev, "AWS::ApiGatewayV2::Api")
    domain = logical_id(dev, "AWS::Cognito::UserPoolDomain")
    distribution = logical_id(dev, "AWS::CloudFront::Distribution")
    assert config == {
        "api_base": f"https://{api}.execute-api.us-east-1.amazonaws.com/api",
        "auth": {
            "kind": "cognito",
            "cognito_domain": f"{domain}.auth.us-east-1.amazoncognito.com",
            "client_id": logical_id(dev, "AWS::Cognito::UserPoolClient"),
            "redirect_uri": f"https://{distribution}.DomainName/",
        },
    }
    assert props["DistributionPaths"] == ["/*"]


def test_outputs_name_the_site_the_pool_and_the_api(dev):
    outputs = dev.template["Outputs"]
    assert resolve(outputs["LabellingSiteUrl"]["Value"]).endswith(".DomainName/")
    assert outputs["LabellersUserPoolId"]["Value"] == {"Ref": logical_id(dev, "AWS::Cognito::UserPool")}
    assert resolve(outputs["LabellingApiUrl"]["Value"]).endswith(".execute-api.us-east-1.amazonaws.com/api")


def test_a2i_workforce_deploys_no_site(a2i):
    for resource_type in (
        "AWS::CloudFront::Distribution",
        "AWS::Cognito::UserPool",
        "AWS::ApiGatewayV2::Api",
        "Custom::CDKBucketDeployment",
    ):
        assert not a2i.of_type(resource_type), resource_type
    with pytest.raises(ValueError):
        task_table_id(a2i)
    assert not {"LabellingSiteUrl", "LabellersUserPoolId", "LabellingApiUrl"} & set(a2i.template["Outputs"])
    report = json.loads((a2i.outdir / "validation-report.json").read_text())
    assert [v["ruleName"] for p in report["pluginReports"] for v in p["violations"]] == []


def test_missing_page_build_names_the_build_command(tmp_path):
    with pytest.raises(PageNotBuiltError, match="npm run build:web"):
        built_page(tmp_path)
    (tmp_path / "index.html").write_text("<!doctype html>")
    assert built_page(tmp_path) == tmp_path
