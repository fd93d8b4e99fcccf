"""The load tests: one Locust scenario per file, run by `locust -f loadtests/<name>.py` or by
`semichat simulate --scenario <name>`; installed as `semichat.loadtests` (see setup.py)."""
