"""Who may label on AWS: a Cognito user pool of admin-created labellers, signing in through managed login.

The labelling page is a public client (no secret) that signs people in with the authorization-code
grant and PKCE; its callback and sign-out URL is the site's own URL. docs/labelling.md has the one
command that adds a labeller.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import EnvironmentSettings

LABELLERS_GROUP = "labellers"
TOKEN_VALIDITY = Duration.hours(1)
SESSION_VALIDITY = Duration.hours(12)
TEMPORARY_PASSWORD_DAYS = 3


def domain_prefix(settings: EnvironmentSettings) -> str:
    """``boxloop-<env>-<first block of the stack's UUID>``: unique per deployment, no account id in the URL."""
    stack_uuid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return f"boxloop-{settings.name}-{Fn.select(0, Fn.split('-', stack_uuid))}"


def managed_login_host(settings: EnvironmentSettings) -> str:
    """The managed-login host (``<prefix>.auth.<region>.amazoncognito.com``) the page sends people to."""
    return f"{domain_prefix(settings)}.auth.{Aws.REGION}.amazoncognito.com"


class Labellers(Construct):
    """User pool (+ ``labellers`` group), the page's app client and the managed-login domain."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings, site_url: str) -> None:
        super().__init__(scope, construct_id)
        destroy = settings.removal_policy == "destroy"
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"boxloop-{settings.name}-labellers",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(TEMPORARY_PASSWORD_DAYS),
            ),
            user_invitation=cognito.UserInvitationConfig(
                email_subject="Your boxloop labelling account",
                email_body=(
                    f"You can now label images with boxloop at {site_url}: sign in as {{username}} with the "
                    f"temporary password {{####}} (valid for {TEMPORARY_PASSWORD_DAYS} days); you will choose your "
                    "own password."
                ),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=not destroy,
            removal_policy=RemovalPolicy.DESTROY if destroy else RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is optional (TOTP) by design: labellers are created by an admin only (no self sign-up), passwords "
            "are strong, and threat protection blocks high-risk sign-ins and compromised passwords.",
        )
        self._respond_to_risk()
        self.group = cognito.UserPoolGroup(
            self,
            "LabellersGroup",
            user_pool=self.user_pool,
            group_name=LABELLERS_GROUP,
            description="People who label images in boxloop's labelling page",
        )
        self.client = self.user_pool.add_client(
            "PageClient",
            user_pool_client_name=f"boxloop-{settings.name}-labelling-page",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=[site_url],
                logout_urls=[site_url],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=TOKEN_VALIDITY,
            access_token_validity=TOKEN_VALIDITY,
            refresh_token_validity=SESSION_VALIDITY,
        )
        self.domain = self.user_pool.add_domain(
            "ManagedLogin",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=domain_prefix(settings)),
            managed_login_version=cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN,
        )
        cognito.CfnManagedLoginBranding(
            self,
            "ManagedLoginStyle",
            user_pool_id=self.user_pool.user_pool_id,
            client_id=self.client.user_pool_client_id,
            use_cognito_provided_values=True,
        )

    def _respond_to_risk(self) -> None:
        """Threat protection's responses: block high-risk sign-ins, challenge medium ones with MFA where set up,
        block sign-ins and password changes with leaked credentials."""
        takeover = cognito.CfnUserPoolRiskConfigurationAttachment
        cognito.CfnUserPoolRiskConfigurationAttachment(
            self,
            "RiskResponses",
            user_pool_id=self.user_pool.user_pool_id,
            client_id="ALL",
            account_takeover_risk_configuration=takeover.AccountTakeoverRiskConfigurationTypeProperty(
                actions=takeover.AccountTakeoverActionsTypeProperty(
                    low_action=takeover.AccountTakeoverActionTypeProperty(event_action="NO_ACTION", notify=False),
                    medium_action=takeover.AccountTakeoverActionTypeProperty(
                        event_action="MFA_IF_CONFIGURED", notify=False
                    ),
                    high_action=takeover.AccountTakeoverActionTypeProperty(event_action="BLOCK", notify=False),
                )
            ),
            compromised_credentials_risk_configuration=takeover.CompromisedCredentialsRiskConfigurationTypeProperty(
                actions=takeover.CompromisedCredentialsActionsTypeProperty(event_action="BLOCK"),
                event_filter=["SIGN_IN", "PASSWORD_CHANGE"],
            ),
        )

    @property
    def domain_host(self) -> str:
        """``managed_login_host``, through the domain resource (what uses it waits for the domain)."""
        return f"{self.domain.domain_name}.auth.{Aws.REGION}.amazoncognito.com"
