"""The labelling page on AWS: a private S3 bucket served only through CloudFront (origin access control).

The page is built by ``npm run build:web`` into ``web/dist/``; synth fails with that instruction when
the build is missing. ``publish`` deploys the built files plus a generated ``config.json`` whose values
(API URL, managed-login domain, client id) are deploy-time tokens, and invalidates the distribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.lambda_image import REPOSITORY_ROOT
from infra.nag import acknowledge, acknowledge_object_prefixes
from infra.settings import EnvironmentSettings

PAGE_BUILD = REPOSITORY_ROOT / "web" / "dist"
PAGE_CONFIG_KEY = "config.json"
BUCKET_DEPLOYMENT_PROVIDER_ID = "Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C"


class PageNotBuiltError(FileNotFoundError):
    """``web/dist/index.html`` is missing: the page must be built before the stack is synthesized."""


def built_page(directory: Path) -> Path:
    """``directory`` when it holds the built page (``index.html``); else PageNotBuiltError saying how to build it."""
    if not (directory / "index.html").is_file():
        raise PageNotBuiltError(
            f"the labelling page is not built ({directory / 'index.html'} is missing): run `npm run build:web` "
            "before synthesizing the stack (the browser workforce deploys the page from web/dist/)"
        )
    return directory


def content_security_policy(*, connect_sources: Sequence[str], image_sources: Sequence[str]) -> str:
    """The page's CSP: its own scripts only, API/sign-in calls to ``connect_sources``, images from ``image_sources``."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", *image_sources],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'", *connect_sources],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class LabellingSite(Construct):
    """Private bucket → CloudFront (OAC, HTTPS only, security headers, ``index.html`` at ``/``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        access_log_bucket: s3.IBucket,
        connect_sources: Sequence[str],
        image_sources: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self._page_directory = built_page(PAGE_BUILD)
        removal = RemovalPolicy.DESTROY if settings.removal_policy == "destroy" else RemovalPolicy.RETAIN
        self.bucket = s3.Bucket(
            self,
            "PageBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            server_access_logs_bucket=access_log_bucket,
            server_access_logs_prefix="labelling-page-bucket/",
            removal_policy=removal,
        )
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment=f"boxloop {settings.name} labelling page security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(
                        connect_sources=connect_sources, image_sources=image_sources
                    ),
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365), include_subdomains=True, override=True
                ),
                xss_protection=cloudfront.ResponseHeadersXSSProtection(protection=True, mode_block=True, override=True),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"boxloop {settings.name} labelling page",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
                compress=True,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=access_log_bucket,
            log_file_prefix="labelling-page-cdn/",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "Labellers may work from any country; sign-in (Cognito) and the JWT-authorized API decide who gets in.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "The distribution serves only static page files (GET/HEAD); no data or credentials pass through it, "
            "and the API it talks to is JWT-authorized and throttled.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The site uses CloudFront's default *.cloudfront.net certificate, whose TLS policy CloudFront fixes; "
            "serving the page from a custom domain with its own certificate lifts it.",
        )

    @property
    def url(self) -> str:
        """``https://<distribution domain>/``: the page's address, its sign-in callback and sign-out URL."""
        return f"https://{self.distribution.distribution_domain_name}/"

    @property
    def origin(self) -> str:
        """``https://<distribution domain>``: the page's origin (the API's only CORS origin)."""
        return f"https://{self.distribution.distribution_domain_name}"

    def publish(self, config: Mapping[str, Any]) -> s3deploy.BucketDeployment:
        """Deploy the built page plus ``config.json`` made of ``config`` (tokens resolved at deploy time)."""
        deployment = s3deploy.BucketDeployment(
            self,
            "Publish",
            destination_bucket=self.bucket,
            sources=[
                s3deploy.Source.asset(str(self._page_directory), exclude=[PAGE_CONFIG_KEY]),
                s3deploy.Source.json_data(PAGE_CONFIG_KEY, dict(config)),
            ],
            distribution=self.distribution,
            distribution_paths=["/*"],
        )
        provider = Stack.of(self).node.find_child(BUCKET_DEPLOYMENT_PROVIDER_ID)
        acknowledge(
            provider,
            "AwsSolutions-IAM4",
            "CDK's page-deployment Lambda uses AWSLambdaBasicExecutionRole to write its logs only.",
            ["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
        )
        acknowledge(provider, "AwsSolutions-L1", "CDK pins the runtime of its own page-deployment Lambda.")
        acknowledge_object_prefixes(
            provider,
            self.bucket,
            [""],
            "CDK's page-deployment Lambda replaces the whole page bucket's content (sync with prune) on deploy.",
        )
        acknowledge(
            provider,
            "AwsSolutions-IAM5",
            "CDK's page-deployment Lambda reads the page's asset zip from the CDK bootstrap asset bucket (key chosen "
            "by CDK) and invalidates the distribution (CloudFront invalidation actions support no resource scoping).",
            [
                "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
                "Resource::*",
            ],
        )
        return deployment
