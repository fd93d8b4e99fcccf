"""Managed alternatives priced at the same activity: API Gateway WebSocket and AppSync.

Either replaces the SQS path and the server's streams; the messages' storage and history reads
(DynamoDB) stay. Prices, US East, read 2026-12-07:
- API Gateway WebSocket: messages sent and received, metered in 32 KB increments, and
  connection minutes (aws.amazon.com/api-gateway/pricing). $1.00 per million messages for the
  first billion (awsforengineers.com, "AWS API Gateway Pricing Explained", 2025-05-19);
  $0.25 per million connection minutes (a third-party quote, docs/../shared fidelity notes:
  not found on the stored AWS page, so an assumption to check).
- AppSync real-time: $2.00 per million real-time updates (outbound messages, and WebSocket
  operations such as connects, count as updates) and $0.08 per million connection minutes
  (aws.amazon.com/appsync/pricing, AWS's own page).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ManagedPrices:
    websocket_per_million_messages: float = 1.00
    websocket_per_million_connection_minutes: float = 0.25
    appsync_per_million_updates: float = 2.00
    appsync_per_million_connection_minutes: float = 0.08


def managed_monthly(
    messages_in: float,
    notifications_out: float,
    connects: float,
    connection_minutes: float,
    prices: ManagedPrices | None = None,
) -> dict[str, float]:
    """Dollars a month of the real-time path alone, from a month's counts: sends received over
    the socket, notifications pushed to connections, connects, and connection minutes."""
    p = prices or ManagedPrices()
    websocket = (messages_in + notifications_out) / 1e6 * p.websocket_per_million_messages
    websocket += connection_minutes / 1e6 * p.websocket_per_million_connection_minutes
    appsync = (notifications_out + connects) / 1e6 * p.appsync_per_million_updates
    appsync += connection_minutes / 1e6 * p.appsync_per_million_connection_minutes
    return {"api_gateway_websocket": websocket, "appsync_realtime": appsync}
