"""The signup endpoint's infrastructure: one HTTP API with the POST and OPTIONS routes to the signups function,
stage throttling, access logs, no CORS wildcard, and a role limited to what a signup does."""

from __future__ import annotations

import json
from typing import Any

from functions.core.signups.endpoint import ROUTE_PATH
from infra.constructs import signups
from tests.infra import cfn
from tests.infra.conftest import Synthesized


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_one_http_api_with_the_signup_routes_only(synthesized: Synthesized) -> None:
    template = synthesized.template
    [api] = resources_of(template, "AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "HTTP"
    assert "CorsConfiguration" not in api["Properties"]  # the function answers CORS per tenant
    routes = sorted(r["Properties"]["RouteKey"] for r in resources_of(template, "AWS::ApiGatewayV2::Route").values())
    assert routes == [f"OPTIONS {ROUTE_PATH}", f"POST {ROUTE_PATH}"]
    [integration] = resources_of(template, "AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    function_id = synthesized.logical_id(synthesized.stack.signups.function)
    assert function_id in json.dumps(integration["Properties"]["IntegrationUri"])
    assert "*" not in json.dumps(api["Properties"].get("CorsConfiguration", {}))


def test_the_stage_is_throttled_and_logs_access(synthesized: Synthesized) -> None:
    [stage] = resources_of(synthesized.template, "AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == synthesized.stack.names.prefix and props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == signups.THROTTLE_RATE_PER_SECOND
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] == signups.THROTTLE_BURST
    log_group = synthesized.logical_id(synthesized.stack.signups.access_logs)
    assert log_group in json.dumps(props["AccessLogSettings"]["DestinationArn"])
    assert "$context.requestId" in props["AccessLogSettings"]["Format"]
    assert "x-api-key" not in props["AccessLogSettings"]["Format"].lower()


def test_the_function_reads_keys_and_writes_only_personas(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    permissions = cfn.role_permissions(synthesized.template, synthesized.logical_id(stack.signups.role))
    actions = {a for granted in permissions.values() for a in granted}
    assert "dynamodb:GetItem" in actions and "sqs:SendMessage" in actions
    control = synthesized.logical_id(stack.storage.control_table)
    control_actions = {a for arn, granted in permissions.items() if control in arn for a in granted}
    assert control_actions == set(signups.CONTROL_TABLE_ACTIONS)
    assert not any(a.startswith(("sms-voice:", "dynamodb:Scan", "dynamodb:DeleteItem")) for a in actions)
    env = synthesized.template["Resources"][synthesized.logical_id(stack.signups.function)]["Properties"]
    assert env["Handler"] == "functions.signups.handler.handler"
