"""The instrument: `semichat simulate`, load generation, scenarios, recorded events, the checker,
reports and plots."""
