"""Per-user FIFO queues: each conversation in order, and a retried fan-out enqueued once.

`MessageGroupId` is the conversation, so SQS hands a user one conversation's notifications in
send order, one at a time (the next is held back while one is in flight). The
`MessageDeduplicationId` is the message id: the queue is the recipient's own, so that alone
names one (message, recipient) pair, and a retry of the same fan-out within SQS's five-minute
window is dropped by SQS instead of enqueued twice. (moto forgets a de-duplication id once its
message is deleted; AWS and LocalStack do not.)
"""

from __future__ import annotations

from semichat.server.delivery.routing.base import Notification
from semichat.server.delivery.routing.naming import user_queue_name
from semichat.server.delivery.routing.per_user_queue import PerUserQueueRouter

FIFO_SUFFIX = ".fifo"


class FifoRouter(PerUserQueueRouter):
    name = "fifo"
    # A poll sent while a group's message is still being deleted would not see the next one
    # (moto's long poll never does; AWS's would once the delete lands), so a stream polls again
    # only once its deletes are done.
    ordered = True

    def queue_name(self, user_id: str) -> str:
        return user_queue_name(self._settings.queue_prefix, user_id, suffix=FIFO_SUFFIX)

    def queue_attributes(self) -> dict[str, str]:
        return {**super().queue_attributes(), "FifoQueue": "true"}

    def send_options(self, notification: Notification) -> dict[str, str]:
        return {
            "MessageGroupId": notification.conversation_id,
            "MessageDeduplicationId": notification.message_id,
        }
