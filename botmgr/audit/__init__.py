"""The audit log: who (API credentials, a console session, the service) did what to
which object, when, from which address. ``context`` carries the actor on the unit of
work's session; ``service`` records and lists; ``routes`` is ``GET /audit``."""
