"""What `semichat serve` runs, by role, each layer importing only those below it:

- `process`: the server as a process (serve, supervisor);
- `api`: HTTP: the app factory, handlers, the SSE stream, request logs;
- `trust` and `faults`: identity, limits and headers; the nemesis (used via their `__init__`);
- `chat`: the domain (conversations, sends, history) and its storage;
- `delivery`: SQS, the routing strategies, orphaned polls;
- `errors`, `metrics`, `identity`, `locks`: the vocabulary every layer shares.

`provisioning` (`semichat provision`) sits beside `process`: it creates what the server uses.
"""
