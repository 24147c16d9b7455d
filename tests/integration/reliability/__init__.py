"""Reliability suites (issue 13): crashes, faults, hostile replies, a simulated month, and
secrets, at scale. Each is seeded and bounded; run them alone with
``scripts/test -m reliability``. Their figures are gathered in :mod:`.summary`.
"""
