"""The instrument: `semichat simulate` and `semichat check`, load generation, the scenarios'
lookup (`loadtests/`), recorded events, the checker (after the run and live), reports and plots."""
