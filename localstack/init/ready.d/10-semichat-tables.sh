#!/usr/bin/env bash
# LocalStack init hook: create semichat's DynamoDB tables (and the Idempotency table's TTL).
# tables.json is generated from semichat/aws/tables.py by `semichat provision --print tables`,
# so this hook holds no table definitions of its own.
set -euo pipefail

# SEMICHAT_TABLES_JSON: for tests/test_localstack_hook.py, which runs this hook outside a container.
TABLES="${SEMICHAT_TABLES_JSON:-/etc/localstack/semichat/tables.json}"
count=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$TABLES")
for ((i = 0; i < count; i++)); do
    entry() { python3 -c 'import json, sys; e = json.load(open(sys.argv[1]))[int(sys.argv[2])][sys.argv[3]]; print(json.dumps(e) if e is not None else "")' "$TABLES" "$i" "$1"; }
    create=$(entry createTable)
    name=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["TableName"])' "$create")
    if awslocal dynamodb describe-table --table-name "$name" >/dev/null 2>&1; then
        echo "semichat: table $name exists"
        continue
    fi
    awslocal dynamodb create-table --cli-input-json "$create" >/dev/null
    awslocal dynamodb wait table-exists --table-name "$name"
    ttl=$(entry timeToLive)
    if [[ -n "$ttl" ]]; then
        awslocal dynamodb update-time-to-live --cli-input-json "$ttl" >/dev/null
    fi
    echo "semichat: created table $name"
done
