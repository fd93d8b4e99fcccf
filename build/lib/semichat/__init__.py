"""semichat: a semi-realtime chat on DynamoDB and SQS, and the instrument that measures it."""
