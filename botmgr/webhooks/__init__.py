"""Signed webhooks: receivers registered through /webhooks and the console get an HTTP
POST for each event (events.py) they subscribed to, signed with their secret
(signing.py), written to an outbox in the transaction of the change (events.py) and
delivered with retries by due time (delivery.py) to checked addresses (targets.py)."""
