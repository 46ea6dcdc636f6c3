"""Signups: the HTTP API a retailer's web form posts to (POST /tenants/{tenant}/signups) and its function."""

from __future__ import annotations

from aws_cdk import Acknowledgment as Ack
from aws_cdk import Duration, RemovalPolicy, Validations
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from functions.core.layout import ENV_CONTROL_TABLE, ENV_PERSONAS_TABLE, ENV_RESOURCE_PREFIX, ResourceNames
from functions.core.signups.endpoint import FUNCTION, ROUTE_PATH
from functions.core.sms.deferral import ENV_DEFERRAL_QUEUE_URL
from infra.constants import LOG_RETENTION
from infra.constructs.function import PossyncFunction
from infra.constructs.permissions import grant_read_settings, grant_table
from infra.constructs.storage import Storage

# Stage-wide throttling (every route, every tenant): a form's steady rate and its bursts, far above a store's
# signups and far below what would run up the account's Lambda concurrency.
THROTTLE_RATE_PER_SECOND = 50
THROTTLE_BURST = 100
# A signup is a few DynamoDB requests: seconds at most even when throttled; API Gateway waits up to 30 s.
FUNCTION_TIMEOUT = Duration.seconds(10)
FUNCTION_MEMORY_MB = 256
# The persona, its identity claims, the signup event, the consent and its evidence: conditional writes and
# transactions (TransactWriteItems needs the per-item actions).
PERSONAS_TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)
# The tenant's key digests and allowed origins: read only (the CLI writes them).
CONTROL_TABLE_ACTIONS = ("dynamodb:GetItem",)
ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime",'
    '"httpMethod":"$context.httpMethod","routeKey":"$context.routeKey","path":"$context.path",'
    '"status":"$context.status","protocol":"$context.protocol","responseLength":"$context.responseLength",'
    '"integrationError":"$context.integrationErrorMessage","latency":"$context.responseLatency"}'
)


class Signups(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        code: lambda_.Code,
        storage: Storage,
        deferral_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        signup = PossyncFunction(
            self,
            "Function",
            name=FUNCTION,
            names=names,
            code=code,
            description="Form signups: API key per tenant, persona by identity, consent to the SMS opt-in",
            memory_size=FUNCTION_MEMORY_MB,
            timeout=FUNCTION_TIMEOUT,
            environment={
                ENV_CONTROL_TABLE: storage.control_table.table_name,
                ENV_PERSONAS_TABLE: storage.personas_table.table_name,
                ENV_RESOURCE_PREFIX: names.prefix,
                ENV_DEFERRAL_QUEUE_URL: deferral_queue.queue_url,
            },
        )
        self.function, self.role = signup.function, signup.role
        grant_table(self.function, storage.personas_table, PERSONAS_TABLE_ACTIONS)
        grant_table(self.function, storage.control_table, CONTROL_TABLE_ACTIONS)
        grant_read_settings(self.function, names)  # the tenant's SMS texts, for the opt-in request it records
        deferral_queue.grant_send_messages(self.function)

        # CORS is answered by the function (each tenant's own origins), so the API declares none: no wildcard.
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=f"{names.prefix}-signups",
            description="POST /tenants/{tenant}/signups: a retailer's web form signs a shopper up",
            create_default_stage=False,
        )
        integration = HttpLambdaIntegration(
            "Integration", self.function, payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0
        )
        self.routes = self.api.add_routes(
            path=ROUTE_PATH,
            methods=[apigwv2.HttpMethod.POST, apigwv2.HttpMethod.OPTIONS],
            integration=integration,
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=f"/aws/apigateway/{names.prefix}-signups",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            # named for the deployment stage (every physical name carries it): the URL ends in /<prefix>
            stage_name=names.prefix,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=THROTTLE_RATE_PER_SECOND, burst_limit=THROTTLE_BURST),
        )
        cfn_stage: apigwv2.CfnStage = self.stage.node.default_child  # type: ignore[assignment]
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn, format=ACCESS_LOG_FORMAT
        )
        for route in self.routes:
            Validations.of(route).acknowledge(
                Ack(
                    id="AwsSolutions-APIG4",
                    reason="Each request carries its tenant's signup API key (x-api-key), checked by the function "
                    "against the tenant's stored SHA-256 digests in constant time; HTTP APIs have no API-key "
                    "authorizer, and a Lambda authorizer would read the same items. OPTIONS is the CORS preflight, "
                    "which browsers send without credentials.",
                )
            )

    @property
    def url(self) -> str:
        """The stage's base URL: forms POST to <url>/tenants/{tenant}/signups."""
        return self.stage.url
