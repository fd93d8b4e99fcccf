"""The server's container image: the repository's `Dockerfile`, as a CDK asset.

Synthesis needs no Docker engine: it copies the build context (what `.dockerignore` allows:
the package, `pyproject.toml`, `README.md`) into `cdk.out/asset.<hash>/` and records the image
in `<Stack>.assets.json`; `cdk deploy` builds it there with Docker and pushes it to the
bootstrap ECR repository. Both tiers use one asset (one hash, one image).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_lambda as lambda_

# The repository root, where the Dockerfile is: the CDK app runs from a checkout.
CONTEXT_DIR = Path(__file__).resolve().parents[2]
DOCKERFILE = "Dockerfile"
PLATFORM = ecr_assets.Platform.LINUX_AMD64


def _context() -> str:
    if not (CONTEXT_DIR / DOCKERFILE).is_file():
        raise FileNotFoundError(f"no {DOCKERFILE} in {CONTEXT_DIR}: synthesize from a checkout")
    return str(CONTEXT_DIR)


def container_image() -> ecs.ContainerImage:
    return ecs.ContainerImage.from_asset(_context(), file=DOCKERFILE, platform=PLATFORM)


def function_code() -> lambda_.DockerImageCode:
    return lambda_.DockerImageCode.from_image_asset(_context(), file=DOCKERFILE, platform=PLATFORM)
