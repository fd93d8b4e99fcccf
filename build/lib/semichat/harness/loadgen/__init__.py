"""Load generation: what simulated chat users do and record.

`recorder`, `view` and `config` are plain Python and unit-tested. `locust_user` imports Locust,
which monkey-patches the process with gevent: only Locust processes import it, never the server
or the asyncio tests.
"""
