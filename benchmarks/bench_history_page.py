"""Benchmark: what one history page costs the embedded DynamoDB as a conversation grows.

`store.history` asks for the newest 51 items of a conversation's partition (a page of 50 and one
to tell whether more exist). For partitions of each `--sizes` length, it times `--reads` such
reads in moto's own query (the raw backend, moto as released) and in the page-by-key query the
embedded backend uses (`semichat/emulator/patches/pages.py`), in this process (no HTTP), and
prints the mean ms of each and their ratio. Half the reads start at the newest message, half at
a random older one, as paging back does.

    python -m benchmarks.bench_history_page --sizes 100,1000,3000,10000 --reads 200
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from semichat.emulator.patches import pages


def conversation(size: int) -> Table:
    table = Table(
        "messages",
        account_id="123456789012",
        region="us-east-1",
        schema=[
            {"AttributeName": "conversationId", "KeyType": "HASH"},
            {"AttributeName": "sortKey", "KeyType": "RANGE"},
        ],
        attr=[
            {"AttributeName": "conversationId", "AttributeType": "S"},
            {"AttributeName": "sortKey", "AttributeType": "S"},
        ],
    )
    for n in range(size):
        table.put_item(
            {
                "conversationId": {"S": "c"},
                "sortKey": {"S": f"2026-12-04T04:{n:08d}#m{n}"},
                "text": {"S": "a message of about sixty characters, as the soak's are."},
            }
        )
    return table


def mean_ms(query: Callable[..., Any], table: Table, size: int, reads: int) -> float:
    rng = random.Random(7)
    hash_key = DynamoType({"S": "c"})
    started = time.perf_counter()
    for i in range(reads):
        start = None
        if i % 2:
            n = rng.randrange(size)
            start = {"conversationId": {"S": "c"}, "sortKey": {"S": f"2026-12-04T04:{n:08d}#m{n}"}}
        query(table, hash_key, None, [], 51, start, False, None)
    return (time.perf_counter() - started) / reads * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,3000,10000")
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    pages.apply()
    raw = Table.query.__wrapped__  # type: ignore[attr-defined]
    print(f"{'messages':>9} {'moto ms':>9} {'by key ms':>10} {'ratio':>7}")
    for size in (int(s) for s in args.sizes.split(",")):
        table = conversation(size)
        motos = mean_ms(raw, table, size, args.reads)
        ours = mean_ms(Table.query, table, size, args.reads)
        print(f"{size:>9} {motos:>9.2f} {ours:>10.2f} {motos / ours:>7.1f}")


if __name__ == "__main__":
    main()
