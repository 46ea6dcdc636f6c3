"""Helpers to read a synthesized CloudFormation template in infra tests."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

Template = dict[str, Any]


def of_type(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: res for key, res in template["Resources"].items() if res["Type"] == resource_type}


def render(value: Any) -> Any:
    """Fold Fn::Join / Ref / Fn::GetAtt into readable strings: {"Ref": "AWS::Region"} -> "${AWS::Region}"."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(str(render(part)) for part in parts)
        if key == "Ref":
            return f"${{{arg}}}"
        if key == "Fn::GetAtt":
            return f"${{{'.'.join(arg)}}}"
    if isinstance(value, list):
        return [render(item) for item in value]
    return value


def role_permissions(template: Template, role_id: str) -> dict[str, set[str]]:
    """Every Allow the role gets from any policy in the template, as rendered resource -> actions."""
    permissions: dict[str, set[str]] = defaultdict(set)
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"].get("Roles", []):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow", statement
            actions = as_list(statement["Action"])
            for resource in as_list(statement["Resource"]):
                key = render(resource)
                permissions[key if isinstance(key, str) else json.dumps(key)].update(actions)
    return dict(permissions)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
