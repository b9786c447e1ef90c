"""The operator console: SQLAdmin mounted at ``/admin`` on the API's own app, reading and
writing through the API's async sessionmaker and service functions.

Authentication — SQLAdmin's login form, checked against the API's HTTP Basic credentials
(``BOTMGR_AUTH_USERNAME`` / ``BOTMGR_AUTH_PASSWORD``). A successful login stores the
operator in Starlette's session cookie, signed with itsdangerous under a key derived from
``BOTMGR_SECRET_KEY`` (HKDF over its current key — scrypt's output for a passphrase — with
a label of its own: separate from the Fernet key; a new key logs consoles out). The cookie
is ``SameSite=Strict``, scoped to ``/admin``, expires after 8 hours, and carries a
fingerprint of the password, so changing the password logs every console out.

Forgery (admin/csrf.py): every action that changes state is a POST from this origin with
the session's CSRF token; GET on an action only shows a confirmation page. SameSite alone
leaves sibling subdomains, old browsers and pasted links open.

Why not HTTP Basic: browsers replay cached Basic credentials on cross-site requests (no
CSRF protection) and cannot log out.

Every request under ``/admin`` passes :class:`admin.auth.ConsoleGate` first: without a
session only the login form and the one stylesheet it links answer; everything else
(pages, actions, every SQLAdmin static file) redirects to the login form or answers 401.
Then :class:`admin.csrf.CsrfGuard`: unsafe methods from another origin or site → 403 (the
login form included), and without the session's token → 403.
"""

from admin.setup import mount_admin

__all__ = ["mount_admin"]
