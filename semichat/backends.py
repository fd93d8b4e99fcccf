"""The server's seam to its backend: settings resolved to one endpoint per service, with
whatever that needs started (the embedded backend as a child process, or nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from semichat.emulator.backend import embedded_backend
from semichat.settings import Settings


@asynccontextmanager
async def with_backend(settings: Settings) -> AsyncIterator[Settings]:
    """The settings resolved to a concrete endpoint per service, with whatever that needs started.

    - embedded: without endpoints, start the embedded backend for both services.
    - localstack: SQS from LocalStack (`localstack_endpoint`) unless `sqs_endpoint` says
      otherwise; DynamoDB from `dynamodb_endpoint` if given, else LocalStack's own when it runs
      one, else the embedded backend (host mode). See `localstack.dynamodb_endpoint`.
    - aws: as given (None is the AWS default endpoint).
    """
    if settings.backend == "embedded" and not (settings.dynamodb_url and settings.sqs_url):
        async with embedded_backend(settings.host, settings.data_dir) as endpoint:
            yield settings.with_overrides(endpoint_url=endpoint)
    elif settings.backend == "localstack":
        from semichat.aws.localstack import dynamodb_endpoint

        resolved = settings.with_overrides(
            sqs_endpoint=settings.sqs_url or settings.localstack_endpoint
        )
        if resolved.dynamodb_url:
            yield resolved
            return
        dynamodb = await dynamodb_endpoint(resolved)
        if dynamodb is not None:
            yield resolved.with_overrides(dynamodb_endpoint=dynamodb)
            return
        async with embedded_backend(settings.host) as endpoint:
            yield resolved.with_overrides(dynamodb_endpoint=endpoint)
    else:
        yield settings
