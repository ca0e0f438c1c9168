"""Zip packages whose parts are encrypted the traditional PKWARE way (ZipCrypto), as `zip -e`
or a file manager's "protect with a password" write them: Python's zipfile reads them with
the password but cannot write them, so the tests write them here (stored, not deflated).

A ``.docx`` made this way is a password-protected zip renamed, not an Office-encrypted
document: zipfile lists its parts and then raises RuntimeError on reading one.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from pathlib import Path

_ENCRYPTED = 0x1  # general purpose flag bit 0


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC = _crc_table()


class _Keys:
    """The cipher's three keys, initialised from the password (APPNOTE 6.1)."""

    def __init__(self, password: bytes) -> None:
        self.k = [0x12345678, 0x23456789, 0x34567890]
        for byte in password:
            self.update(byte)

    def update(self, byte: int) -> None:
        k0, k1, k2 = self.k
        k0 = (k0 >> 8) ^ _CRC[(k0 ^ byte) & 0xFF]
        k1 = ((k1 + (k0 & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        k2 = (k2 >> 8) ^ _CRC[(k2 ^ (k1 >> 24)) & 0xFF]
        self.k = [k0, k1, k2]

    def encrypt(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            temp = (self.k[2] | 2) & 0xFFFF
            out.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
            self.update(byte)
        return bytes(out)


def encrypted_zip(path: Path, parts: dict[str, bytes], password: bytes = b"secret") -> Path:
    """A zip at ``path`` holding ``parts`` (name -> bytes), each ZipCrypto-encrypted with
    ``password``."""
    body, directory = bytearray(), bytearray()
    for name, data in parts.items():
        crc = zlib.crc32(data)
        header = os.urandom(11) + bytes([crc >> 24])  # the last byte checks the password
        sealed = _Keys(password).encrypt(header + data)
        encoded = name.encode()
        fields = (20, _ENCRYPTED, zipfile.ZIP_STORED, 0, 0x21, crc, len(sealed), len(data))
        offset = len(body)
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields, len(encoded), 0) + encoded
        body += sealed
        directory += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, len(encoded), 0, 0, 0, 0, 0, offset
        )
        directory += encoded
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(parts), len(parts), len(directory), len(body), 0
    )
    path.write_bytes(bytes(body + directory + end))
    return path
