"""The on-premises pull's network: existing VPC subnets and a security group that lets it call only what it must."""

from __future__ import annotations

from aws_cdk import Annotations, Fn
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import OnPremVpc
from infra.constructs.permissions import acknowledge_wildcard_resource

HTTPS = 443
# What Lambda does with the execution role to attach a function to subnets (the same actions as AWS's managed
# AWSLambdaVPCAccessExecutionRole, without its log actions, which the function's own log group grant covers).
ENI_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:UnassignPrivateIpAddresses",
)
HTTPS_EGRESS = (
    "HTTPS: AWS APIs (DynamoDB, S3, SQS, SSM, Secrets Manager) through the NAT gateway or VPC endpoints of the "
    "subnets, vendors hosted APIs and store servers on port 443"
)


class OnPremNetwork(Construct):
    """Subnets the operator made (routed to the stores over a VPN, with a NAT gateway) and the function's egress.

    The security group allows out only: HTTPS anywhere (AWS APIs, the vendors' hosted endpoints, store servers on
    443), the configured store ranges on the configured ports, and the configured public store ports. DNS needs no
    rule: security groups do not filter traffic to the VPC's Amazon-provided resolver.
    """

    def __init__(self, scope: Construct, construct_id: str, *, network: OnPremVpc, function_label: str) -> None:
        super().__init__(scope, construct_id)
        self.network = network
        # Looked up by id without calling AWS (no Vpc.from_lookup), so the app synthesizes offline and in CI.
        self.vpc = ec2.Vpc.from_vpc_attributes(self, "Vpc", vpc_id=network.vpc_id, availability_zones=Fn.get_azs())
        Annotations.of(self.vpc).acknowledge_warning(
            "@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones",
            "Nothing here selects subnets by availability zone: the function's subnets are given by id, so the "
            "region's zones (a list token) are never indexed.",
        )
        self.subnets = [
            ec2.Subnet.from_subnet_id(self, f"Subnet{index}", subnet_id)
            for index, subnet_id in enumerate(network.subnet_ids)
        ]
        for subnet in self.subnets:
            Annotations.of(subnet).acknowledge_warning(
                "@aws-cdk/aws-ec2:noSubnetRouteTableId",
                "The function only places its network interfaces in the subnet; nothing here reads or changes its "
                "route table (the routes to the NAT gateway and to the store networks are the operator's).",
            )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description=f"{function_label}: HTTPS, and the store networks on their ports; nothing inbound",
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS), HTTPS_EGRESS)
        for cidr in network.private_cidrs:
            for port in network.ports:
                self.security_group.add_egress_rule(
                    ec2.Peer.ipv4(str(cidr)), ec2.Port.tcp(port), f"store network {cidr} port {port}"
                )
        for port in network.public_ports:
            self.security_group.add_egress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(port), f"store servers on public addresses, port {port}"
            )

    @property
    def subnet_selection(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnets=self.subnets)

    def grant_network_interfaces(self, role: iam.IRole) -> None:
        """Lambda creates and removes the function's network interfaces in the subnets with the function's role."""
        iam.Grant.add_to_principal(grantee=role, actions=list(ENI_ACTIONS), resource_arns=["*"])
        acknowledge_wildcard_resource(
            role,
            "*",
            "Lambda manages a VPC function's network interfaces with its execution role; the ec2 Describe actions "
            "support no resource-level permissions and interface ARNs do not exist before Lambda creates them. "
            "These are exactly the ec2 actions of AWS's AWSLambdaVPCAccessExecutionRole.",
        )
