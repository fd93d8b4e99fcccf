"""The delivery path: how a notification reaches a user's streams. The SQS operations semichat
uses, counted (`sqs`); the routing strategies behind one interface (`routing`); and the polls
whose stream went away (`orphans`). It knows nothing of HTTP or of the chat's rules."""
