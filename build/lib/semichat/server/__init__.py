"""What `semichat serve` runs: the HTTP API, the SSE stream, the domain, the DynamoDB and
SQS layers, and notification routing."""
