"""Local indexes of an earlier format brought up to date in place, without re-encoding a page.

Format 3 -> 4: every document gains its sign bits (``bits.npy``, computed from its stored
vectors a chunk at a time), so that the auto mode can switch to binary search, and the header
loses its ``mode`` (how an index is searched is no longer fixed when it is created). Crash
safety: each ``bits.npy`` is written to a temporary name and renamed into its document's
folder, and the new header replaces the old one last, in one atomic write. A process killed at
any instant leaves a format-3 index (with some documents' bits already there: they are kept,
and the next open finishes the job) or a format-4 one; both open. Runs under the writer lock,
so no other process adds or deletes documents meanwhile.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap

from rag.index.durable import fsync_dir
from rag.index.store import DocumentStore

logger = logging.getLogger(__name__)

CHUNK_ROWS = 1 << 16  # token vectors binarised at a time


def migrate_v3(store: DocumentStore, version: int) -> None:
    """Bring the format-3 index of ``store`` to ``version`` (4), logging one line."""
    from rag.index.binary import WORD_BITS

    started = time.monotonic()
    with store.lock():
        current = store.header()
        if current is None or current.get("version") != 3:
            return  # another process migrated it while this one waited for the lock
        keeps_bits = int(current["dim"]) % WORD_BITS == 0
        folders = sorted(p.parent for p in store.docs_dir.glob("*/doc.json"))
        added = sum(_add_bits(folder) for folder in folders) if keeps_bits else 0
        new = {key: value for key, value in current.items() if key != "mode"}
        if current.get("mode") != "pooled":
            new["pool_factor"] = None
        store.write_header({**new, "version": version, "bits": keeps_bits})
    logger.warning(
        "%s: index format 3 migrated to %d in place (%d documents, sign bits added to %d) in "
        "%.1f s; no page was encoded again",
        store.root,
        version,
        len(folders),
        added,
        time.monotonic() - started,
    )


def _add_bits(folder: Path) -> bool:
    """Write ``folder/bits.npy`` from its vectors unless it is there; True if written."""
    from rag.index.binary import WORD_BITS, binarize

    target = folder / "bits.npy"
    for leftover in folder.glob("bits.npy.*.tmp"):  # a migration killed mid-write
        leftover.unlink(missing_ok=True)
    if target.exists():
        return False
    vectors = np.load(folder / "vectors.npy", mmap_mode="r")
    tokens, dim = vectors.shape
    scratch = folder / f"bits.npy.{os.getpid()}.tmp"
    bits = open_memmap(scratch, "w+", np.uint64, (tokens, dim // WORD_BITS))
    for start in range(0, tokens, CHUNK_ROWS):
        rows = np.array(vectors[start : start + CHUNK_ROWS])  # a writable copy for torch
        # bf16 is stored as its uint16 bits: the sign is the same in any dtype
        chunk = torch.from_numpy(rows.view(np.int16) if rows.dtype == np.uint16 else rows)
        bits[start : start + rows.shape[0]] = binarize(chunk.float())
    bits.flush()
    del bits
    with scratch.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(scratch, target)
    fsync_dir(folder)
    return True
