# The chat server's image: `semichat serve` on port 8080 against real AWS, for both compute tiers
# of `semichat/deploy/` (docs/deploy.md). On ECS Fargate the task runs it as it is; on Lambda the
# AWS Lambda Web Adapter below (a Lambda extension: outside Lambda nothing starts it) turns each
# invocation into an HTTP request to it and streams the response back. The CDK app builds it as
# an asset at `cdk deploy`; `cdk synth` only copies this folder's allowed files (.dockerignore).
FROM python:3.11-slim

COPY --from=public.ecr.aws/awsguru/aws-lambda-adapter:0.9.1 /lambda-adapter /opt/extensions/lambda-adapter

WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY semichat ./semichat
COPY loadtests ./loadtests
RUN pip install --no-cache-dir . && useradd --system --no-create-home semichat

# What the deployments do not set themselves: the AWS backend (tables provisioned by the
# `Semichat` stack), unbuffered logs (one JSON line a request, read by CloudWatch as written).
ENV SEMICHAT_BACKEND=aws \
    SEMICHAT_PORT=8080 \
    PYTHONUNBUFFERED=1
USER semichat
EXPOSE 8080
CMD ["semichat", "serve"]
