"""Backup files: a consistent snapshot of the whole store, with a header, version and checksum.

Layout (integers big-endian):
    magic "CHANNELD-BACKUP\\0" (16) | format u16 | schema version u32 | created unix ms u64
    records: key length u32 | value length u32 | key | value
(the store's records in key order, then its audit log's frames as pending-round records, which the
first open of the restored store writes into segment files)
    end marker u32 0xFFFFFFFF | record count u64 | sha256 of every preceding byte (32)
Restore loads into a staging directory beside the target and renames it into place only after the
checksum matched, so a corrupt or truncated file never leaves a half-restored data directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import plyvel
from plyvel._plyvel import Snapshot

from channeld.store._errors import BackupRefused, StoreUnavailable, plyvel_message
from channeld.store._schema import SCHEMA_KEY, SCHEMA_VERSION

MAGIC = b"CHANNELD-BACKUP\x00"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">16sHIQ")
_RECORD = struct.Struct(">II")
_END = 0xFFFFFFFF
_COUNT = struct.Struct(">Q")
MAX_KEY_BYTES = 1024
MAX_VALUE_BYTES = 1 << 20
_LOAD_BATCH_BYTES = 4 << 20


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.out.write(data)


def write_backup(db: plyvel.DB, path: Path,
                 records_of: Callable[[Snapshot], Iterable[tuple[bytes, bytes]]] | None = None) -> int:
    """Snapshot `db` into `path` (via a temporary file, fsynced, then renamed); return records.

    `records_of` turns the snapshot into the records to write (the store adds its audit log's frames).
    """
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    try:
        with db.snapshot() as snap, open(tmp, "wb") as raw_out:
            records = snap.iterator() if records_of is None else records_of(snap)
            version_raw = snap.get(SCHEMA_KEY) or b"\0\0\0\0"
            out = _HashingWriter(raw_out)
            out.write(_HEADER.pack(MAGIC, FORMAT_VERSION, int.from_bytes(version_raw, "big"),
                                   int(time.time() * 1000)))
            for key, value in records:
                out.write(_RECORD.pack(len(key), len(value)) + key + value)
                count += 1
            out.write(_END.to_bytes(4, "big") + _COUNT.pack(count))
            raw_out.write(out.digest.digest())
            raw_out.flush()
            os.fsync(raw_out.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreUnavailable(f"cannot write backup {path}: {exc}") from exc
    return count


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _HashingReader:
    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.digest = hashlib.sha256()

    def read(self, n: int, hashed: bool = True) -> bytes:
        data = self.src.read(n)
        if len(data) != n:
            raise BackupRefused("backup file is truncated")
        if hashed:
            self.digest.update(data)
        return data


def read_header(reader: _HashingReader, max_schema: int) -> int:
    """Check magic, format and schema version; return the schema version."""
    magic, fmt, schema, _created = _HEADER.unpack(reader.read(_HEADER.size))
    if magic != MAGIC:
        raise BackupRefused("not a channeld backup file (bad magic)")
    if fmt != FORMAT_VERSION:
        raise BackupRefused(f"backup format version {fmt} is not supported (this build reads "
                            f"{FORMAT_VERSION})")
    if not 1 <= schema <= max_schema:
        raise BackupRefused(f"backup holds schema version {schema}; this build supports 1..{max_schema}")
    return int(schema)


def iter_records(reader: _HashingReader) -> Iterator[tuple[bytes, bytes]]:
    """Yield records; only after the last one are count and checksum checked (then EOF)."""
    count = 0
    while True:
        key_len = int.from_bytes(reader.read(4), "big")
        if key_len == _END:
            break
        value_len = int.from_bytes(reader.read(4), "big")
        if not 0 < key_len <= MAX_KEY_BYTES or value_len > MAX_VALUE_BYTES:
            raise BackupRefused(f"backup record has implausible sizes ({key_len}, {value_len}): corrupt")
        yield reader.read(key_len), reader.read(value_len)
        count += 1
    (stated,) = _COUNT.unpack(reader.read(_COUNT.size))
    expected = reader.digest.digest()
    if reader.read(32, hashed=False) != expected:
        raise BackupRefused("backup checksum does not match: the file is corrupt")
    if stated != count or reader.src.read(1):
        raise BackupRefused("backup record count or length does not match: the file is corrupt")


def restore_backup(backup: str | Path, data_dir: str | Path, *, max_schema: int = SCHEMA_VERSION) -> int:
    """Restore `backup` into `data_dir`, which must be missing or empty; return records restored."""
    backup, data_dir = Path(backup), Path(data_dir)
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupRefused(f"restore target {data_dir} is not an empty directory")
    staging = data_dir.with_name(data_dir.name + ".restoring")
    if staging.exists():
        raise BackupRefused(f"{staging} exists (an interrupted restore?); remove it first")
    try:
        with open(backup, "rb") as src:
            reader = _HashingReader(src)
            read_header(reader, max_schema)
            count = _load(reader, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if data_dir.exists():
        data_dir.rmdir()
    os.replace(staging, data_dir)
    fsync_dir(data_dir.parent)
    return count


def _load(reader: _HashingReader, staging: Path) -> int:
    try:
        db = plyvel.DB(str(staging), create_if_missing=True, error_if_exists=True)
    except plyvel.Error as exc:
        raise StoreUnavailable(f"cannot create {staging}: {plyvel_message(exc)}") from exc
    count = 0
    try:
        batch, pending = db.write_batch(sync=True), 0
        for key, value in iter_records(reader):
            batch.put(key, value)
            count, pending = count + 1, pending + len(key) + len(value)
            if pending >= _LOAD_BATCH_BYTES:
                batch.write()
                batch, pending = db.write_batch(sync=True), 0
        batch.write()
    except plyvel.Error as exc:
        raise StoreUnavailable(f"cannot write restored store {staging}: {plyvel_message(exc)}") from exc
    finally:
        db.close()
    return count
