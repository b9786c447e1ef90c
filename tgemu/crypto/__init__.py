"""Server-side MTProto cryptography: the RSA key the client encrypts to, the DH exchange
that creates auth keys, and the MTProto 2.0 message encryption (AES-IGE via cryptg)."""
