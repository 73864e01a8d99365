"""Orchestration per verb: each reads state once through the core, plans, executes, returns data."""
