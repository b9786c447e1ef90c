"""The fleet: which worker process owns which bot (leases.py), where a bot's tasks are
published (routing.py), and the Redis names both use (keys.py, scripts.py)."""
