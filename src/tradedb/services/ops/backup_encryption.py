"""Client-side encryption of backup files before they leave the machine.

AES-256-GCM over 1 MiB chunks (the STREAM construction): each chunk's nonce is a random
7-byte prefix, the chunk's counter and a last-chunk flag, and the file's header is
authenticated with every chunk. So a reordered, dropped, truncated or altered chunk, or a
wrong passphrase, fails to decrypt instead of giving wrong data. The key comes from the
passphrase with scrypt (n=2**15, r=8, p=1) and a random salt stored in the header.
The passphrase is read from an environment variable, never from the config file.
"""

from __future__ import annotations

import os
import struct
from typing import IO

from tradedb.services.ops.backup_manifest import BackupError, missing_extra
from tradedb.store.engines.backups import CHUNK

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
except ImportError:  # only `--encrypt` needs it; derive_key says what to install
    AESGCM = Scrypt = InvalidTag = None  # type: ignore[assignment,misc]

MAGIC = b"TRADEDB-ENC1\n"
SALT_BYTES = 16
PREFIX_BYTES = 7
HEADER_BYTES = len(MAGIC) + SALT_BYTES + PREFIX_BYTES
LENGTH = struct.Struct(">I")
TAG_BYTES = 16
SCRYPT_N = 2**15
PASSPHRASE_ENV = "TRADEDB_BACKUP_PASSPHRASE"
MIN_PASSPHRASE = 12
ENCRYPTED_SUFFIX = ".enc"


def derive_key(passphrase: str, salt: bytes) -> bytes:
    if Scrypt is None:
        raise missing_extra("cryptography")
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"the backup passphrase must have at least {MIN_PASSPHRASE} characters")
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=8, p=1).derive(passphrase.encode())


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")


def encrypt_stream(reader: IO[bytes], writer: IO[bytes], passphrase: str) -> None:
    salt, prefix = os.urandom(SALT_BYTES), os.urandom(PREFIX_BYTES)
    header = MAGIC + salt + prefix
    cipher = AESGCM(derive_key(passphrase, salt))
    writer.write(header)
    counter = 0
    chunk = reader.read(CHUNK)
    while True:
        following = reader.read(CHUNK) if chunk else b""
        last = not following
        sealed = cipher.encrypt(_nonce(prefix, counter, last), chunk, header)
        writer.write(LENGTH.pack(len(sealed)) + sealed)
        if last:
            return
        chunk, counter = following, counter + 1


def decrypt_stream(reader: IO[bytes], writer: IO[bytes], passphrase: str) -> None:
    header = reader.read(HEADER_BYTES)
    if len(header) != HEADER_BYTES or not header.startswith(MAGIC):
        raise BackupError("not a tradedb encrypted backup (bad header)")
    salt = header[len(MAGIC) : len(MAGIC) + SALT_BYTES]
    prefix = header[len(MAGIC) + SALT_BYTES :]
    cipher = AESGCM(derive_key(passphrase, salt))
    counter = 0
    while True:
        raw_length = reader.read(LENGTH.size)
        if len(raw_length) != LENGTH.size:
            raise BackupError("the encrypted backup is truncated")
        (length,) = LENGTH.unpack(raw_length)
        sealed = reader.read(length)
        if len(sealed) != length or length < TAG_BYTES or length > CHUNK + TAG_BYTES:
            raise BackupError("the encrypted backup is truncated or damaged")
        last = False
        try:
            plain = cipher.decrypt(_nonce(prefix, counter, False), sealed, header)
        except InvalidTag:
            try:
                plain = cipher.decrypt(_nonce(prefix, counter, True), sealed, header)
            except InvalidTag:
                raise BackupError(
                    "cannot decrypt the backup: wrong passphrase, or the file is damaged"
                ) from None
            last = True
        writer.write(plain)
        if last:
            if reader.read(1):
                raise BackupError("the encrypted backup has data after its last chunk")
            return
        counter += 1
