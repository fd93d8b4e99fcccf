"""Load generation: what simulated chat users do and record, and their hooks into Locust.

`recorder`, `view`, `retry` and `config` are plain Python and unit-tested. `user` (the users and
their tabs), `plugin` (settings, run directory, markers), `options` (a scenario's knobs as Locust
arguments), `shipping` (workers to master), `live_stats` (delivery figures in Locust's
statistics) and `web_tab` (the web UI's Delivery tab) import Locust, which monkey-patches the
process with gevent: only Locust processes import them, never the server or the asyncio tests.
"""
