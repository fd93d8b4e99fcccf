"""LocalStack's init hook (localstack/init/ready.d) creates the tables from tables.json.

No Docker here, so the hook runs on the host with a stand-in `awslocal` that sends the same
requests to the moto server with boto3: what is checked is that the hook issues every table's
CreateTable and the TTL update, and that the generated JSON is valid input for those APIs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from semichat.aws.tables import TABLE_SPECS, tables_document

HOOK = Path(__file__).resolve().parent.parent / "localstack/init/ready.d/10-semichat-tables.sh"

# Handles the four awslocal calls the hook makes; exits 255 on an AWS error, like the AWS CLI.
FAKE_AWSLOCAL = """\
import json, os, sys
import boto3
from botocore.exceptions import ClientError, WaiterError
args = sys.argv[1:]
db = boto3.client("dynamodb", endpoint_url=os.environ["FAKE_DYNAMODB"], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
opt = dict(zip(args[2::2], args[3::2]))
try:
    if args[:2] == ["dynamodb", "describe-table"]:
        db.describe_table(TableName=opt["--table-name"])
    elif args[:2] == ["dynamodb", "create-table"]:
        db.create_table(**json.loads(opt["--cli-input-json"]))
    elif args[:3] == ["dynamodb", "wait", "table-exists"]:
        db.get_waiter("table_exists").wait(TableName=args[4])
    elif args[:2] == ["dynamodb", "update-time-to-live"]:
        db.update_time_to_live(**json.loads(opt["--cli-input-json"]))
    else:
        sys.exit(f"unexpected awslocal call: {args}")
except (ClientError, WaiterError) as exc:
    print(exc, file=sys.stderr)
    sys.exit(255)
"""


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server of its own: the hook does not depend on the backend under test, so it runs
    once, not once per backend."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def run_hook(tmp_path: Path, endpoint: str, tables: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    awslocal = bin_dir / "awslocal"
    awslocal.write_text(f"#!{sys.executable}\n{FAKE_AWSLOCAL}")
    awslocal.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_DYNAMODB": endpoint,
        "SEMICHAT_TABLES_JSON": str(tables),
    }
    return subprocess.run(
        ["bash", str(HOOK)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_hook_creates_the_tables_with_ttl(tmp_path: Path, moto_endpoint: str) -> None:
    dynamodb: Any = boto3.client(
        "dynamodb",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    prefix = f"hook{uuid.uuid4().hex[:6]}-"
    tables = tmp_path / "tables.json"
    tables.write_text(json.dumps(tables_document(prefix)))

    first = run_hook(tmp_path, moto_endpoint, tables)
    assert first.returncode == 0, first.stderr
    for spec in TABLE_SPECS:
        name = spec.name(prefix)
        assert f"created table {name}" in first.stdout
        keys = dynamodb.describe_table(TableName=name)["Table"]["KeySchema"]
        assert keys == spec.create_table_kwargs(prefix)["KeySchema"]
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        enabled = ttl.get("TimeToLiveStatus") == "ENABLED"
        assert enabled is (spec.ttl_attribute is not None)

    again = run_hook(tmp_path, moto_endpoint, tables)  # a LocalStack restart
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("exists") == len(TABLE_SPECS)
