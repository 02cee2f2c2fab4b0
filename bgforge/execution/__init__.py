"""Execution: the plan and its commit protocol, and the executors that run shard entries."""
