"""What `semichat --help` and `semichat COMMAND --help` tell a user: what each command does and
an example or two. A test keeps implementation words out of them (tests/test_help.py)."""

from __future__ import annotations

import argparse
import textwrap

WIDTH = 78

SUMMARY = (
    "semichat: a chat whose messages reach browsers over server-sent events through DynamoDB "
    "and SQS, and the instrument that measures whether they arrive. Serve it, load it with "
    "simulated users (Locust), and judge each run: lost, duplicated, reordered, latency."
)
EXAMPLES = """examples:
  semichat serve                                   # the chat on http://127.0.0.1:8080
  semichat simulate --scenario chat --users 20     # a judged run on a server started for it
  semichat check runs/adhoc                        # judge a plain `locust -f loadtests/chat.py` run

`semichat COMMAND --help` says more about each command."""

COMMANDS: dict[str, tuple[str, str, list[str]]] = {
    "serve": (
        "serve the chat API, the notification stream and the widget",
        "Serve the chat: its HTTP API, the notification stream (server-sent events) and the "
        "embeddable widget at /, over the embedded backend (nothing to install), LocalStack or "
        "AWS. Demo identity (any x-user-id) listens on loopback only.",
        [
            "semichat serve                                 # http://127.0.0.1:8080/?user=alice",
            "semichat serve --backend localstack --routing sharded",
            "semichat serve --auth token --auth-secret-file secret --host 0.0.0.0",
        ],
    ),
    "backend": (
        "run the embedded backend alone and print its endpoint",
        "Run the embedded backend by itself: DynamoDB and SQS emulated on one port, with the "
        "tables created. It prints its endpoint as one line of JSON once it is ready, for "
        "servers and tests that share it.",
        [
            "semichat backend --port 4599",
            "semichat serve --endpoint-url http://127.0.0.1:4599    # in another terminal",
        ],
    ),
    "provision": (
        "create the tables and users' queues, or print them, the IAM policy or CloudFormation",
        "Create the chat's tables (and, with --users, the users' notification queues) in the "
        "chosen backend; or, with --print, print the tables, the server's IAM policy or the "
        "CloudFormation template as JSON and create nothing.",
        [
            "semichat provision --backend localstack",
            "semichat provision --routing preprovisioned --users alice,bob",
            "semichat provision --print policy --routing sharded --account-id 123456789012",
        ],
    ),
    "token": (
        "print a signed token for USER (for `serve --auth token`)",
        "Print a signed bearer token that names USER, for trying `semichat serve --auth token` "
        "with the same secret.",
        [
            "semichat token alice --ttl 600",
            'curl -H "Authorization: Bearer $(semichat token alice)" '
            "'http://127.0.0.1:8080/api/chat/history?conversationId=support-demo'",
        ],
    ),
    "simulate": (
        "load the chat with simulated users, then judge every delivery",
        "Start the server and its backend (or use --target), run a Locust scenario of "
        "simulated users against it, and judge every delivery from what the users recorded: "
        "the table of sent, lost, duplicated, reordered and latency, on the wire and in each "
        "tab's view. Writes a run directory (runs/<scenario>/<UTC time>/). Exits 1 when a "
        "message never reached an open tab's view. With --web, Locust's web UI instead.",
        [
            "semichat simulate --scenario chat --users 20 --duration 20",
            "semichat simulate --scenario multitab --tabs 4 --faults sqs",
            "semichat simulate --web                        # then open http://127.0.0.1:8089",
            "semichat simulate --target http://10.0.0.5:8080 --users 100",
        ],
    ),
    "check": (
        "judge a recorded run: print its delivery table, write results.json and plots",
        "Judge a recorded run, however it was made (semichat simulate, plain Locust headless "
        "or in its web UI, a master with workers): print the delivery table, and write "
        "results.json and plots/ into the run directory. Exits 1 when a message never reached "
        "an open tab's view, 2 when the record cannot be judged (the line says why).",
        [
            "locust -f loadtests/chat.py --headless -u 20 -t 30s --host http://127.0.0.1:8080",
            "semichat check runs/adhoc                      # plain Locust's latest run",
            "semichat check runs/chat/latest",
        ],
    ),
    "sweep": (
        "repeat simulate over strategies, fault presets and user counts; summarise",
        "Run `semichat simulate` for every routing strategy x fault preset x user count, "
        "repeated, and write one row per run to summary.csv (the notebooks read it).",
        [
            "semichat sweep --routing per_user_queue,sharded --faults none,sqs --users 10,50",
            "semichat sweep --scenario idle --users 100 --repeat 2 -- --active 0",
        ],
    ),
    "model": (
        "predict requests, servers, latency and cost of a strategy at N users",
        "Simulate one server process's share of N users (a discrete-event model of the chosen "
        "strategy's delivery path) and print requests per second by operation, queues, long "
        "polls per process, servers needed, notification latency, the monthly cost beside the "
        "managed alternatives, and the first documented limit the strategy meets. With "
        "--validate, model a measured run and print model, measured and their ratio.",
        [
            "semichat model --routing sharded --users 100000 --send-interval 600",
            "semichat model --validate runs/chat/latest",
        ],
    ),
    "calibrate": (
        "measure each AWS call against a backend; write a latency profile to replay",
        "Measure how long each DynamoDB and SQS call the chat makes takes against a backend "
        "(a bounded number of calls, one at a time, on scratch tables and queues it deletes "
        "afterwards), and write the percentiles as a latency profile. Measure AWS once, then "
        "replay it anywhere with --faults latency=FILE.",
        [
            "semichat calibrate --backend embedded --output emb.json --count 50",
            "semichat calibrate --backend aws --region eu-west-1 --output aws-eu.json",
            "semichat simulate --faults latency=aws-eu.json",
        ],
    ),
    "worker": (
        "lend this machine's users to `simulate --expect-workers N` on another",
        "Be one of the Locust workers a `semichat simulate --expect-workers N` master waits "
        "for: run its scenario's users here and send what they record to the master, which "
        "judges the whole run.",
        [
            "semichat simulate --expect-workers 2 --master-bind-host 0.0.0.0   # the master",
            "semichat worker --master-host 10.0.0.4                            # each worker",
        ],
    ),
}


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str
) -> argparse.ArgumentParser:
    """The subcommand `name`, with its one-line help, description and examples."""
    line, description, examples = COMMANDS[name]
    return sub.add_parser(
        name,
        help=line,
        description=textwrap.fill(description, WIDTH),
        epilog="examples:\n" + "\n".join(f"  {e}" for e in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
