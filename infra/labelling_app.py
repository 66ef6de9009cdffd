"""The browser workforce on AWS: the labelling page, its sign-in, its API and the task table, wired together.

Built in dependency order (no CloudFormation cycle): the site's distribution first (its domain is the
sign-in callback and the API's CORS origin), then the user pool, the task table and the API, and last
the page's ``config.json`` that names them. The page's CSP admits the region's API Gateway hosts rather
than the API's own URL, because the API's CORS setting already depends on the distribution.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws
from constructs import Construct

from infra.labellers import Labellers, managed_login_host
from infra.labelling_api import LabellingApi
from infra.labelling_site import LabellingSite
from infra.labelling_tasks import labelling_task_table
from infra.settings import EnvironmentSettings
from infra.storage import Storage


class LabellingApp(Construct):
    """Site (S3 + CloudFront) + labellers (Cognito) + API (HTTP API → Lambda) + task table."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        storage: Storage,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        login_host = managed_login_host(settings)
        data_bucket = storage.data_bucket
        self.site = LabellingSite(
            self,
            "Site",
            settings=settings,
            access_log_bucket=storage.access_log_bucket,
            connect_sources=[f"https://*.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}", f"https://{login_host}"],
            image_sources=[
                f"https://{data_bucket.bucket_domain_name}",
                f"https://{data_bucket.bucket_regional_domain_name}",
            ],
        )
        self.labellers = Labellers(self, "Labellers", settings=settings, site_url=self.site.url)
        self.task_table = labelling_task_table(self, "TaskTable", settings=settings)
        self.api = LabellingApi(
            self,
            "Api",
            settings=settings,
            storage=storage,
            task_table=self.task_table,
            labellers=self.labellers,
            site_origin=self.site.origin,
            environment=environment,
        )
        self.site.publish(
            {
                "api_base": self.api.api_base,
                "auth": {
                    "kind": "cognito",
                    "cognito_domain": self.labellers.domain_host,
                    "client_id": self.labellers.client.user_pool_client_id,
                    "redirect_uri": self.site.url,
                },
            }
        )
