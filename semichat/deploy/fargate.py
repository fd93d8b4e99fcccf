"""The Fargate tier: an ECS Fargate service of the server's image behind an Application Load
Balancer, its timeouts those of `timeouts.derive`.

- Network: a VPC of two public subnets (no NAT gateway: tasks get public addresses and reach SQS
  and DynamoDB directly; only the ALB's security group may reach them), with flow logs.
- Load balancer: internet-facing, idle timeout from the heartbeat; HTTP on 80, or HTTPS on 443
  with `certificate_arn`. Its security group admits `allowed_cidr` (everyone in token mode).
- Target group: health checks on `/healthz` (200 once DynamoDB and SQS answer), deregistration
  delay from the longest stream, so a draining task's streams rotate before it stops.
- Service: `tasks` tasks of `processes` vCPU (a server process each, `serve --processes`),
  rolled with a circuit breaker. With `single_task` (`sharded`) a deployment stops the old task
  before starting the new one, so two never consume one shard.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from cdk_nag import NagSuppressions
from constructs import Construct

from semichat.deploy.config import ANYONE
from semichat.deploy.environment import HEALTH_PATH, PORT
from semichat.deploy.timeouts import Timeouts

# Per server process (`serve --processes P`, one asyncio loop each): one vCPU, 2 GiB.
PROCESS_CPU = 1024
PROCESS_MEMORY_MIB = 2048
HEALTH_INTERVAL_S = 10

# cdk-nag's findings on this tier that are kept, each with its reason.
ENVIRONMENT_REASON = (
    "The container's variables are settings, not secrets: strategy, table and queue prefixes, "
    "timeouts, and in token mode the identity provider's public JWKS URL, issuer and "
    "audience. AWS credentials come from the task role."
)
REGISTRY_TOKEN_REASON = (
    "ecr:GetAuthorizationToken has no resource-level permissions (Resource must be *); the "
    "execution role's pulls are limited to the CDK's asset repository."
)
OPEN_LISTENER_REASON = (
    "Token mode: the chat is public and the server verifies a signed token on every request "
    "(`semichat:auth=demo` requires `semichat:allowed-cidr` instead)."
)
ACCESS_LOG_REASON = (
    "The server logs every request itself (one JSON line: requestId, userId, status, "
    "duration) to CloudWatch Logs; ALB access logs would need a bucket outliving the stack."
)


@dataclass(frozen=True)
class FargateProps:
    image: ecs.ContainerImage
    environment: dict[str, str]
    timeouts: Timeouts
    task_role: iam.IRole
    tasks: int
    allowed_cidr: str
    processes: int = 1
    single_task: bool = False
    certificate_arn: str | None = None


class FargateTier(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: FargateProps) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                )
            ],
            flow_logs={"FlowLog": ec2.FlowLogOptions()},
        )
        self._service(props)
        balancer_group = self._load_balancer(props)
        self._suppress(props, balancer_group)
        scheme = "https" if props.certificate_arn else "http"
        self.url = f"{scheme}://{self.load_balancer.load_balancer_dns_name}"

    def _service(self, props: FargateProps) -> None:
        cluster = ecs.Cluster(
            self, "Cluster", vpc=self.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=PROCESS_CPU * props.processes,
            memory_limit_mib=PROCESS_MEMORY_MIB * props.processes,
            task_role=props.task_role,
        )
        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.container = self.task_definition.add_container(
            "Server",
            image=props.image,
            environment=props.environment,
            port_mappings=[ecs.PortMapping(container_port=PORT)],
            logging=ecs.LogDrivers.aws_logs(stream_prefix="server", log_group=log_group),
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=self.task_definition,
            desired_count=props.tasks,
            assign_public_ip=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=0 if props.single_task else 100,
            max_healthy_percent=100 if props.single_task else 200,
        )

    def _load_balancer(self, props: FargateProps) -> ec2.SecurityGroup:
        t = props.timeouts
        balancer_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=self.vpc,
            description="semichat ALB: who may call the chat",
            allow_all_outbound=False,
        )
        listen_port = 443 if props.certificate_arn else 80
        balancer_group.add_ingress_rule(
            ec2.Peer.ipv4(props.allowed_cidr), ec2.Port.tcp(listen_port), "chat clients"
        )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=self.vpc,
            internet_facing=True,
            security_group=balancer_group,
            idle_timeout=cdk.Duration.seconds(t.alb_idle_timeout_seconds),
            drop_invalid_header_fields=True,
        )
        if props.certificate_arn:
            listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                certificates=[elbv2.ListenerCertificate.from_arn(props.certificate_arn)],
                open=False,
            )
        else:
            listener = self.load_balancer.add_listener("Http", port=80, open=False)
        self.target_group = listener.add_targets(
            "Server",
            port=PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.service],
            deregistration_delay=cdk.Duration.seconds(t.deregistration_delay_seconds),
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH,
                healthy_http_codes="200",
                interval=cdk.Duration.seconds(HEALTH_INTERVAL_S),
            ),
        )
        return balancer_group

    def _suppress(self, props: FargateProps, balancer_group: ec2.SecurityGroup) -> None:
        NagSuppressions.add_resource_suppressions(
            self.task_definition, [{"id": "AwsSolutions-ECS2", "reason": ENVIRONMENT_REASON}]
        )
        NagSuppressions.add_resource_suppressions(
            self.task_definition.obtain_execution_role(),
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": REGISTRY_TOKEN_REASON,
                    "appliesTo": ["Resource::*"],
                }
            ],
            apply_to_children=True,
        )
        NagSuppressions.add_resource_suppressions(
            self.load_balancer, [{"id": "AwsSolutions-ELB2", "reason": ACCESS_LOG_REASON}]
        )
        if props.allowed_cidr == ANYONE:
            NagSuppressions.add_resource_suppressions(
                balancer_group, [{"id": "AwsSolutions-EC23", "reason": OPEN_LISTENER_REASON}]
            )
