"""Scenario `chat`: users in small conversations, each sending at a steady pace and holding
one SSE stream. Knobs (conversation size, send interval, ...) come from `semichat simulate`."""

from semichat.loadgen.locust_user import ChatUser


class ChatParticipant(ChatUser):
    pass
