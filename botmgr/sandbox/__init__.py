"""The sandbox: botmgr on one machine with nothing but Python (``botmgr sandbox``,
stack.py), its embedded PostgreSQL and Redis (embedded.py), and the steps of
Procfile.sandbox (helpers.py; ``python -m botmgr.sandbox``). Not for production."""

from botmgr.sandbox.helpers import create_database, shell_exports, wait_for_services

__all__ = ["create_database", "shell_exports", "wait_for_services"]
