"""Grants on what this stack does not own (settings in SSM, credentials in Secrets Manager), and IAM5 reasons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

from functions.core.layout import ResourceNames, Vendor

SETTINGS_READ_ACTIONS = ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath")
CREDENTIALS_READ_ACTIONS = ("secretsmanager:GetSecretValue",)


def settings_parameters_arn(stack: Stack, names: ResourceNames) -> str:
    return stack.format_arn(service="ssm", resource="parameter", resource_name=f"{names.ssm_root.lstrip('/')}/*")


def credential_secrets_arn(stack: Stack, names: ResourceNames, vendor: Vendor) -> str:
    """The secrets of one vendor's credentials (<prefix>/<tenant>/<vendor>/<credential>), and no other.

    Secret ARNs end in a random suffix, so only a name pattern can select them. The pattern matches neither another
    vendor's credentials nor the deployment's integrator token (<prefix>/<vendor>/integrator-token): tenant and
    credential ids hold no '/', so the vendor is always the second part of a credential's name.
    """
    return stack.format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name=f"{names.secret_root}*/{vendor.value}/*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def grant_read_settings(function: lambda_.Function, names: ResourceNames) -> None:
    """Tenant and integration settings are the parameters under the possync root path, and only those."""
    arn = settings_parameters_arn(Stack.of(function), names)
    iam.Grant.add_to_principal(grantee=function, actions=list(SETTINGS_READ_ACTIONS), resource_arns=[arn])
    acknowledge_wildcard_resource(
        function.role,
        arn,
        "Settings are one parameter per tenant and integration under the possync root path, created by "
        "admins after deployment, so they can only be selected by that path.",
    )


def grant_read_credentials(
    function: lambda_.Function, names: ResourceNames, vendors: Sequence[Vendor], reason: str
) -> None:
    """The credentials of these vendors only: a function that is compromised or confused cannot read another
    POS's credentials (nor the integrator tokens, which only the CLI reads)."""
    stack = Stack.of(function)
    arns = [credential_secrets_arn(stack, names, vendor) for vendor in vendors]
    iam.Grant.add_to_principal(grantee=function, actions=list(CREDENTIALS_READ_ACTIONS), resource_arns=arns)
    for arn in arns:
        acknowledge_wildcard_resource(
            function.role,
            arn,
            f"{reason}: one secret per tenant and credential, created by admins after deployment; secret ARNs end "
            "in a random suffix, so only a name pattern can select them.",
        )


def grant_table(principal: lambda_.Function, table: dynamodb.ITable, actions: Sequence[str]) -> None:
    """These actions on the table itself and none of its indexes (Table.grant would add `index/*`)."""
    iam.Grant.add_to_principal(grantee=principal, actions=list(actions), resource_arns=[table.table_arn])


def acknowledge_wildcard_resource(principal: IConstruct | None, arn: str, reason: str) -> None:
    """Acknowledge cdk-nag's AwsSolutions-IAM5 finding for one wildcard resource granted to this principal.

    The finding id is derived from the granted ARN itself, so the acknowledgment cannot drift from the grant.
    """
    if principal is None:
        raise ValueError("acknowledge_wildcard_resource needs the principal that holds the grant")
    finding = _nag_text(Stack.of(principal).resolve(arn))
    Validations.of(principal).acknowledge(Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{finding}]", reason=reason))


def _nag_text(value: Any) -> str:
    """Render a resolved value the way cdk-nag names it in findings: Ref -> <Name>, GetAtt -> <Id.Attr>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        [(key, arg)] = value.items()
        if key == "Ref":
            return f"<{arg}>"
        if key == "Fn::GetAtt":
            return f"<{'.'.join(arg)}>"
        if key == "Fn::Join":
            separator, parts = arg
            return str(separator).join(_nag_text(part) for part in parts)
    raise ValueError(f"cannot name {value!r} as cdk-nag does")
