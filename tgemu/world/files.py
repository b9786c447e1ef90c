"""Files: the parts a client uploads (upload.saveFilePart / saveBigFilePart) and the
photos and documents Telegram makes of them.

Parts are server-side temporaries ("The storage life of each portion of data is between
several minutes and several hours", core.telegram.org/api/files): kept in memory only,
per account and file id, and dropped by ``POST /reset`` or a restart. A stored file
keeps what a client can observe (kind, size, mime, dimensions, its file reference),
never the bytes.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tgemu.world.messages import WorldError, now
from tgemu.world.models import StoredFile

if TYPE_CHECKING:
    from tgemu.world.models import Snapshot

#: Parts older than this are forgotten (the low end of "several minutes to several hours").
PART_LIFETIME_SECONDS = 3600


@dataclass
class Upload:
    """One file being uploaded: ``big`` for saveBigFilePart, which also says the total."""

    big: bool
    total: int | None = None
    parts: dict[int, bytes] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.parts.values())

    def data(self) -> bytes:
        return b"".join(self.parts[i] for i in sorted(self.parts))


class Uploads:
    """Upload parts by (account, file id)."""

    def __init__(self) -> None:
        self._uploads: dict[tuple[int, int, bool], Upload] = {}

    def get(self, account_id: int, file_id: int, big: bool) -> Upload | None:
        upload = self._uploads.get((account_id, file_id, big))
        if upload is not None and time.monotonic() - upload.started > PART_LIFETIME_SECONDS:
            del self._uploads[(account_id, file_id, big)]
            return None
        return upload

    def start(self, account_id: int, file_id: int, big: bool, total: int | None) -> Upload:
        limit = time.monotonic() - PART_LIFETIME_SECONDS
        self._uploads = {k: u for k, u in self._uploads.items() if u.started >= limit}
        upload = self._uploads[(account_id, file_id, big)] = Upload(big=big, total=total)
        return upload

    def clear(self) -> None:
        self._uploads.clear()


class FileOps:
    """Mixed into World: stored photos and documents (World owns ``_s`` and ``_touch``)."""

    _s: Snapshot

    def _touch(self) -> None:  # pragma: no cover - World's own
        raise NotImplementedError

    def store_file(self, **fields: Any) -> StoredFile:
        file_id = secrets.randbits(62) + 1
        stored = StoredFile(id=file_id, date=now(), file_reference=secrets.token_hex(8), **fields)
        self._s.files[file_id] = stored
        self._touch()
        return stored

    def stored_file(self, file_id: int) -> StoredFile:
        stored = self._s.files.get(file_id)
        if stored is None:
            raise WorldError(404, f"no file {file_id}")
        return stored

    def find_file(self, file_id: int) -> StoredFile | None:
        return self._s.files.get(file_id)

    def expire_file_references(self) -> int:
        """Give every stored file a new file reference: the old ones now answer
        FILE_REFERENCE_EXPIRED (core.telegram.org/api/file_reference: references expire
        and a client must fetch a fresh one or upload again)."""
        for stored in self._s.files.values():
            stored.file_reference = secrets.token_hex(8)
        self._touch()
        return len(self._s.files)
