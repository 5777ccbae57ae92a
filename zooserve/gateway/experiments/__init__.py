"""A/B experiments: config, assignment, records and their running totals, the state the replicas share,
statistics (fixed-horizon and sequential), reports and guardrails."""
