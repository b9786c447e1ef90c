"""The MTProto server stack, in Telethon's layers: transport (framing) → crypto (auth
keys, AES-IGE) → session (msg ids, containers, service messages) → calls (TL parsing,
wrapper unwrapping, the dispatcher)."""
