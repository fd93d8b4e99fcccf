"""Faults injected on purpose (the nemesis): the spec and its seeded decisions (`nemesis`),
and the SQS layer that applies them (`faulty_sqs`). Other parts use only the names below."""

from semichat.server.faults.faulty_sqs import FaultySqsQueues
from semichat.server.faults.nemesis import PRESETS, FaultSpec, FaultSpecError, Nemesis

__all__ = ["PRESETS", "FaultSpec", "FaultSpecError", "FaultySqsQueues", "Nemesis"]
