"""The chat domain: conversations, participants, idempotent sends and history (`service`),
the commands it accepts (`payloads`), their storage in DynamoDB (`store`) and the marks that
say a send's notifications went out (`marks`). It knows nothing of HTTP."""
