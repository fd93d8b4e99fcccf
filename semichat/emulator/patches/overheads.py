"""Work moto repeats on every request that the embedded backend does once, or not at all.

Measured with py-spy --gil on both backend processes of `semichat simulate --scenario chat
--users 100 --routing sharded` (29 November), after the cuts in `moto_patches.py`:

- Which methods a response class has: moto lists them with `inspect.getmembers` on every
  request, to check that the action exists (6 % of the SQS backend, 3 % of DynamoDB's). A
  class's methods do not change while it serves, so the list is kept per class.
- Names: `camelcase_to_underscores` turns an action or attribute name into a method name,
  character by character, on every request and for every attribute of a queue. It is a pure
  function of its argument, so its answers are kept.
- SendMessage reads whether the queue deduplicates by content, and to read that one attribute
  moto computes all of the queue's attributes, counting its messages (8.5 % of the SQS
  backend). While a message is sent, the queue answers that attribute alone.

The request handler and the app's settings (no Flask debug mode, no CORS) are in
`moto_keepalive.py`, where the server is built.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.core import responses as core_responses
from moto.sqs import models as sqs_models

# The queue a SendMessage in this thread is writing to (moto serves each connection on a
# thread of its own): while it is set, that queue's `attributes` holds the one SendMessage reads.
_sending = threading.local()


def _patch_method_names() -> None:
    listed = functools.lru_cache(maxsize=None)(core_responses.method_names_from_class)
    core_responses.method_names_from_class = listed  # type: ignore[assignment]


def _patch_names() -> None:
    to_snake = functools.lru_cache(maxsize=4096)(core_responses.camelcase_to_underscores)
    core_responses.camelcase_to_underscores = to_snake  # type: ignore[assignment]
    sqs_models.camelcase_to_underscores = to_snake  # type: ignore[attr-defined]


def _patch_send_attributes() -> None:
    queue_class, backend_class = sqs_models.Queue, sqs_models.SQSBackend
    every_attribute = queue_class.attributes
    send, send_batch = backend_class.send_message, backend_class.send_message_batch

    def attributes(self: Any) -> dict[str, Any]:
        if getattr(_sending, "queue", None) is not self or self is None:
            return every_attribute.fget(self)  # type: ignore[no-any-return, attr-defined]
        # All SendMessage reads of a queue's attributes (validating, deduplicating, adding).
        if not self.fifo_queue:
            return {}
        value = self.content_based_deduplication
        if isinstance(value, bool):
            value = str(value).lower()
        return {"ContentBasedDeduplication": value}

    def sending(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            _sending.queue = self.get_queue(queue_name)
            try:
                return method(self, queue_name, *args, **kwargs)
            finally:
                _sending.queue = None

        return wrapper

    queue_class.attributes = property(attributes)  # type: ignore[method-assign, assignment]
    backend_class.send_message = sending(send)  # type: ignore[method-assign]
    backend_class.send_message_batch = sending(send_batch)  # type: ignore[method-assign]


def apply() -> None:
    _patch_method_names()
    _patch_names()
    _patch_send_attributes()
