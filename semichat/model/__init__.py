"""The capacity model: a discrete-event simulation (SimPy) of each strategy's delivery path,
carried to large user counts, priced, and checked against measured runs (docs/capacity.md)."""
