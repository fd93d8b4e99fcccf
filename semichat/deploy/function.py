"""The Lambda tier: the server's image as a function behind a function URL that streams.

Python has no native response streaming on Lambda; the image carries the AWS Lambda Web Adapter
(`Dockerfile`), a Lambda extension that starts beside `semichat serve`, waits for `/healthz`,
then turns each invocation into an HTTP request to the server on 127.0.0.1:8080 and streams the
response back as it is written (`AWS_LWA_INVOKE_MODE=response_stream`, the URL's
`InvokeMode.RESPONSE_STREAM`). One open stream is one running invocation, so:

- the function's timeout (`timeouts.derive`) lies above the stream's longest life, and the
  stream rotates before it; a client that leaves does not end its invocation early (Lambda
  keeps running a streamed response whose caller went away), rotation does;
- each execution environment serves one request at a time: N open streams are N concurrent
  executions, counted against the account's concurrency (1,000 by default);
- no VPC: function URLs do not stream from functions attached to one.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from semichat.deploy.timeouts import Timeouts

MEMORY_MIB = 1024


@dataclass(frozen=True)
class FunctionProps:
    code: lambda_.DockerImageCode
    environment: dict[str, str]
    timeouts: Timeouts
    role: iam.IRole


class FunctionTier(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: FunctionProps) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        log_group.grant_write(props.role)
        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            code=props.code,
            architecture=lambda_.Architecture.X86_64,
            memory_size=MEMORY_MIB,
            timeout=cdk.Duration.seconds(props.timeouts.function_timeout_seconds),
            environment=props.environment,
            role=props.role,
            log_group=log_group,
        )
        # Who may call is the server's to decide (token mode verifies every request); a URL
        # with AWS_IAM auth would need SigV4 from browsers and Locust alike.
        self.function_url = self.function.add_function_url(
            auth_type=lambda_.FunctionUrlAuthType.NONE,
            invoke_mode=lambda_.InvokeMode.RESPONSE_STREAM,
        )
        self.url = self.function_url.url
