"""A possync Lambda: the shared runtime settings, its own least-privilege role and its own log group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Acknowledgment as Ack
from aws_cdk import Duration, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.core.layout import ResourceNames
from infra.bundling import FUNCTIONS_PACKAGE
from infra.constants import APPLICATION_LOG_LEVEL, ARCHITECTURE, LOG_RETENTION, LOGGING_FORMAT, RUNTIME

POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"


def handler_for(name: str) -> str:
    """Every function's entry point is `handler` in functions/<name>/handler.py."""
    return f"{FUNCTIONS_PACKAGE}.{name}.handler.handler"


class PossyncFunction(Construct):
    """A Lambda whose role starts empty: callers grant exactly what the function does."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        names: ResourceNames,
        code: lambda_.Code,
        description: str,
        memory_size: int,
        timeout: Duration,
        environment: Mapping[str, str],
        **function_options: Any,
    ) -> None:
        super().__init__(scope, construct_id)
        function_name = names.function_name(name)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {function_name}",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            code=code,
            # A function's entry point is functions/<name>/handler.py unless `handler` names another module.
            handler=function_options.pop("handler", None) or handler_for(name),
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            memory_size=memory_size,
            timeout=timeout,
            role=self.role,
            log_group=self.log_group,
            logging_format=LOGGING_FORMAT,
            application_log_level_v2=APPLICATION_LOG_LEVEL,
            environment={
                POWERTOOLS_SERVICE_NAME: name,
                POWERTOOLS_METRICS_NAMESPACE: names.metrics_namespace,
                **environment,
            },
            **function_options,
        )
        Validations.of(self.function.node.default_child).acknowledge(  # type: ignore[arg-type]
            Ack(
                id="AwsSolutions-L1",
                reason="Python 3.12 is a supported Lambda runtime; every function and the bundled binary wheels "
                "(cp312) share infra.constants.RUNTIME, which is upgraded deliberately, for all at once.",
            )
        )
