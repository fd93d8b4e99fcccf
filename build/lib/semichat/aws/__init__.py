"""What talks to AWS and its stand-ins: clients, the table schema, provisioning, IAM,
CloudFormation, the embedded backend and LocalStack."""
