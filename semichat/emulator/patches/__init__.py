"""The one seam where semichat touches moto's, werkzeug's and Flask's internals.

The embedded backend patches moto to be fast enough for a 2-core machine and faithful where it
matters (atomic conditional writes, transactions that undo their own writes); what each patch
buys is measured in the README. Such patches break silently when a library changes: a method
renamed, a parameter moved. So every patch names what it replaces (`Target`), `mismatches()`
compares each with the library installed, and `apply()` refuses to patch a library whose
shape has changed, naming the first patch that no longer fits. The versions tested are
`TESTED`, pinned exactly in pyproject.toml.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from importlib import metadata

# The versions every patch below was written and measured against (pyproject pins them).
TESTED = {"moto": "5.2.5", "werkzeug": "3.1.9", "flask": "3.1.3"}
PROPERTY = "property"
PRESENT = "present"


@dataclass(frozen=True)
class Target:
    """One attribute a patch replaces or relies on, and the shape it expects: the parameter
    names of a callable, `PROPERTY`, or just `PRESENT`."""

    module: str
    owner: str | None
    attribute: str
    shape: tuple[str, ...] | str

    @property
    def name(self) -> str:
        return ".".join(p for p in (self.module, self.owner, self.attribute) if p)


def _t(module: str, owner: str | None, attribute: str, shape: tuple[str, ...] | str) -> Target:
    return Target(module, owner, attribute, shape)


DDB, TABLE, SQS, APP = (
    "moto.dynamodb.models",
    "moto.dynamodb.models.table",
    "moto.sqs.models",
    "moto.moto_server.werkzeug_app",
)
SERVING = "werkzeug.serving"
HANDLER = (SERVING, "WSGIRequestHandler")
PUT = (
    "self",
    "table_name",
    "item_attrs",
    "expected",
    "condition_expression",
    "expression_attribute_names",
    "expression_attribute_values",
    "overwrite",
    "return_values_on_condition_check_failure",
)
UPDATE = (
    "self",
    "table_name",
    "key",
    "update_expression",
    "expression_attribute_names",
    "expression_attribute_values",
    "attribute_updates",
    "expected",
    "condition_expression",
    "return_values_on_condition_check_failure",
)
DELETE = (
    "self",
    "table_name",
    "key",
    "expression_attribute_names",
    "expression_attribute_values",
    "condition_expression",
    "return_values_on_condition_check_failure",
)
QUERY = (
    "self",
    "hash_key",
    "range_comparison",
    "range_objs",
    "limit",
    "exclusive_start_key",
    "scan_index_forward",
    "projection_expressions",
    "index_name",
    "consistent_read",
    "filter_expression",
    "hash_key_conditions",
    "range_key_conditions",
    "filter_kwargs",
)
SEND = (
    "self",
    "queue_name",
    "message_body",
    "message_attributes",
    "delay_seconds",
    "deduplication_id",
    "group_id",
    "system_attributes",
    "validate_group_id",
)
MAKE_SERVER = (
    "host",
    "port",
    "app",
    "threaded",
    "processes",
    "request_handler",
    "passthrough_errors",
    "ssl_context",
    "fd",
)

# Patch name (as the README lists it) -> what it replaces or relies on.
PATCHES: dict[str, list[Target]] = {
    "transactions undo their own writes": [
        _t(DDB, "DynamoDBBackend", "transact_write_items", ("self", "transact_items")),
        _t(DDB, None, "copy", PRESENT),
    ],
    "a query reads one page by key": [
        _t(TABLE, "Table", "query", QUERY),
        _t(TABLE, "Table", "all_items", ("self",)),
        _t(TABLE, "Table", "_get_last_evaluated_key", ("self", "last_result", "index_name")),
        _t(TABLE, None, "RESULT_SIZE_LIMIT", PRESENT),
        _t("moto.dynamodb.comparisons", "OpDefault", "expr", ("self", "item")),
        _t("moto.dynamodb.comparisons", None, "get_filter_expression", ("expr", "names", "values")),
    ],
    "retention checked without recomputing attributes": [
        _t(
            SQS,
            "SQSBackend",
            "is_message_valid_based_on_retention_period",
            ("self", "queue_name", "message"),
        ),
    ],
    "attribute picker keeps its aliases": [
        _t("moto.core.serialize", "AttributePicker", "__call__", ("self", "context")),
        _t("moto.core.serialize", "AttributePicker", "get_possible_keys", ("self", "context")),
    ],
    "host lookup kept": [
        _t(APP, "DomainDispatcherApplication", "get_backend_for_host", ("self", "host")),
    ],
    "DynamoDB answers dumped at once": [
        _t("moto.dynamodb.responses", "DynamoResult", "execute_result", ("self", "context")),
        _t("moto.dynamodb.models.utilities", None, "DynamoJsonEncoder", PRESENT),
    ],
    "queue counts with one clock": [
        _t(SQS, "Queue", "messages", PROPERTY),
        _t(SQS, "Queue", "approximate_number_of_messages_delayed", PROPERTY),
        _t(SQS, "Queue", "approximate_number_of_messages_not_visible", PROPERTY),
    ],
    "recently deleted handles only": [
        _t(SQS, "Queue", "__init__", ("self", "name", "region", "account_id", "kwargs")),
        _t(SQS, "Queue", "delete_message", ("self", "receipt_handle")),
    ],
    "receives and deletes atomic per queue": [
        _t(SQS, "Queue", "wait_for_messages", ("self", "timeout")),
        _t(SQS, "SQSBackend", "get_queue", ("self", "queue_name")),
        _t(
            SQS,
            "SQSBackend",
            "receive_message",
            (
                "self",
                "queue_name",
                "count",
                "wait_seconds_timeout",
                "visibility_timeout",
                "message_attribute_names",
            ),
        ),
        _t(SQS, "SQSBackend", "delete_message", ("self", "queue_name", "receipt_handle")),
        _t(
            SQS,
            "SQSBackend",
            "change_message_visibility",
            ("self", "queue_name", "receipt_handle", "visibility_timeout"),
        ),
        _t(SQS, "SQSBackend", "delete_message_batch", ("self", "queue_name", "receipts")),
        _t(SQS, "SQSBackend", "change_message_visibility_batch", ("self", "queue_name", "entries")),
    ],
    "model instances not listed": [
        _t("moto.core.common_models", "BaseModel", "__new__", ("cls", "args", "kwargs")),
        _t("moto.core.model_instances", None, "reset_model_data", ()),
    ],
    "method names kept per class": [
        _t("moto.core.responses", None, "method_names_from_class", ("clazz",)),
    ],
    "name conversions kept": [
        _t("moto.core.responses", None, "camelcase_to_underscores", ("argument",)),
        _t(SQS, None, "camelcase_to_underscores", ("argument",)),
    ],
    "SendMessage reads one attribute": [
        _t(SQS, "Queue", "attributes", PROPERTY),
        _t(SQS, "SQSBackend", "send_message", SEND),
        _t(SQS, "SQSBackend", "send_message_batch", ("self", "queue_name", "entries")),
    ],
    "conditional writes atomic per item": [
        _t(DDB, "DynamoDBBackend", "put_item", PUT),
        _t(DDB, "DynamoDBBackend", "update_item", UPDATE),
        _t(DDB, "DynamoDBBackend", "delete_item", DELETE),
        _t(DDB, "DynamoDBBackend", "transact_write_items", ("self", "transact_items")),
    ],
    "connections kept alive": [
        _t(APP, "DomainDispatcherApplication", "__init__", ("self", "create_app")),
        _t(APP, "MotoRequestHandler", "make_environ", ("self",)),
        _t(*HANDLER, "run_wsgi", ("self",)),
        _t(*HANDLER, "send_header", ("self", "keyword", "value")),
        _t(*HANDLER, "log_request", ("self", "code", "size")),
        _t(*HANDLER, "date_time_string", ("self", "timestamp")),
        _t(SERVING, None, "selectors", PRESENT),
        _t(SERVING, None, "make_server", MAKE_SERVER),
        _t("werkzeug.wsgi", "LimitedStream", "exhaust", ("self",)),
    ],
    "no CORS, no debug mode": [
        _t(APP, None, "DISABLE_GLOBAL_CORS", PRESENT),
        _t(APP, None, "create_backend_app", ("service",)),
    ],
}


class PatchMismatch(RuntimeError):
    """An installed library no longer has the shape a patch expects."""


def _shape_of(target: Target) -> tuple[str, ...] | str | None:
    try:
        owner = importlib.import_module(target.module)
        if target.owner is not None:
            owner = getattr(owner, target.owner)
        raw = inspect.getattr_static(owner, target.attribute)
    except (ImportError, AttributeError):
        return None
    if target.shape == PRESENT:
        return PRESENT
    if isinstance(raw, property):
        return PROPERTY
    try:  # follows functools.wraps: a patched callable still shows its original's shape
        return tuple(inspect.signature(getattr(owner, target.attribute)).parameters)
    except (TypeError, ValueError):
        return PRESENT


def mismatches(patches: dict[str, list[Target]] | None = None) -> list[str]:
    """One line per target whose installed shape is not the expected one, naming its patch."""
    found = []
    for patch, targets in (PATCHES if patches is None else patches).items():
        for target in targets:
            shape = _shape_of(target)
            if shape is None:
                found.append(f"patch {patch!r}: {target.name} is gone")
            elif shape != target.shape:
                found.append(
                    f"patch {patch!r}: {target.name} is now {shape}, expected {target.shape}"
                )
    return found


def installed_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in TESTED}


def apply() -> None:
    """Check every patch's shape, then patch moto in this process (idempotent)."""
    found = mismatches()
    if found:
        raise PatchMismatch(
            f"{found[0]} (installed {installed_versions()}, tested {TESTED}); "
            "update the patch or pin the tested versions"
        )
    from semichat.emulator.patches import atomic, core, overheads, pages, queue_locks

    core.apply()
    pages.apply()
    queue_locks.lock_queue_state()
    overheads.apply()
    # After the others, so that the lock covers a patched transaction's snapshot and restore.
    atomic.make_conditional_writes_atomic()
