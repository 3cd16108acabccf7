"""An output file a writer may or may not own: given a path, the writer opens it and closes it;
given a file object, it only flushes it on close. Shared by the pcap writer and the event log."""

from __future__ import annotations

import os
from typing import IO, Any


class OwnedFile:
    def __init__(self, file_or_path: str | os.PathLike | IO[Any], mode: str, **open_kw: Any) -> None:
        if isinstance(file_or_path, (str, os.PathLike)):
            self._file: IO[Any] = open(file_or_path, mode, **open_kw)
            self._owned = True
        else:
            self._file = file_or_path
            self._owned = False
        self._closed = False

    def flush(self) -> None:
        if not self._closed:
            self._file.flush()

    def close(self) -> None:
        """Flush; close the file if this writer opened it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            self._file.close()
        else:
            self._file.flush()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
