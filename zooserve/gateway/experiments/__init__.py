"""A/B experiments: config, assignment, statistics, records, reports and guardrails."""
