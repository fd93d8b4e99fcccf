"""The HTTP layer: the application factory (`app`), its typed state (`appkeys`), the
handlers of send, history and session, the SSE stream, and request logging. It parses,
calls the chat domain and the delivery path, and shapes responses."""
