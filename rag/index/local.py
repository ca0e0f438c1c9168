"""LocalIndex: the embedded default, a self-describing, versioned folder.

Layout::

    index.json                  {"format", "version", "retriever", "dim"}: checked on open
    docs/<doc_id>/doc.json      the Document record
    docs/<doc_id>/page-NNNN.png page images (the answerer and heatmaps read them)
    docs/<doc_id>/vectors.safetensors  "vectors" (tokens, dim) + "lengths" (pages,)
    .staging/                   documents being added; anything here after a crash is junk

A document is added by writing everything into ``.staging/<tmp>`` and renaming that folder to
``docs/<doc_id>``: the rename is the commit, so a crash leaves the document whole or absent.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rag.errors import DocumentNotFoundError, IndexMismatchError
from rag.index.base import Document, Hit, Index
from rag.scoring import PackedPages, maxsim_packed, top_k

logger = logging.getLogger(__name__)

FORMAT = "visual-rag-local-index"
VERSION = 1
_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


class LocalIndex(Index):
    def __init__(
        self,
        root: Path,
        retriever_id: str,
        device: str = "cpu",
        dtype: str = "bfloat16",
    ) -> None:
        self.root = Path(root)
        self.retriever_id = retriever_id
        self.device = device
        self.dtype = _DTYPES[dtype]
        self._lock = threading.RLock()
        self._docs: dict[str, Document] = {}
        self._vectors: dict[str, list[torch.Tensor]] = {}  # doc_id -> per-page (n_i, dim)
        self._packed: tuple[PackedPages, list[tuple[str, int]]] | None = None
        self._seen_mtime: int | None = None
        self._check_header()
        self._clear_staging()

    # -- header -----------------------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        header = self._read_header()
        return None if header is None else int(header["dim"])

    def _read_header(self) -> dict | None:
        path = self.root / "index.json"
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise IndexMismatchError(f"{path}: not a readable index header ({error})") from None

    def _check_header(self, dim: int | None = None) -> None:
        header = self._read_header()
        if header is None:
            return
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise IndexMismatchError(
                f"{self.root}: index format {header.get('format')} v{header.get('version')} is not "
                f"{FORMAT} v{VERSION}; index your PDFs again into a new --data-dir"
            )
        if header.get("retriever") != self.retriever_id:
            raise IndexMismatchError(
                f"{self.root} was built with retriever {header.get('retriever')!r}, not "
                f"{self.retriever_id!r}: set RAG_RETRIEVER={header.get('retriever')} or use "
                "another --data-dir"
            )
        if dim is not None and int(header["dim"]) != dim:
            raise IndexMismatchError(
                f"{self.root} holds {header['dim']}-d vectors, the retriever gives {dim}-d"
            )

    def _write_header(self, dim: int) -> None:
        header = {"format": FORMAT, "version": VERSION, "retriever": self.retriever_id, "dim": dim}
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.root / "index.json", json.dumps(header, indent=2))

    # -- adding and deleting ----------------------------------------------------------------

    @contextmanager
    def staging(self) -> Iterator[Path]:
        parent = self.root / ".staging"
        parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=parent, prefix=f"{os.getpid()}-"))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def add(self, document: Document, staged: Path, embeddings: list[torch.Tensor]) -> None:
        if len(embeddings) != document.pages:
            raise ValueError(f"{document.pages} pages but {len(embeddings)} embeddings")
        dim = int(embeddings[0].shape[-1])
        with self._lock:
            self._check_header(dim)
            if self._read_header() is None:
                self._write_header(dim)
            lengths = torch.tensor([page.shape[0] for page in embeddings], dtype=torch.int64)
            vectors = torch.cat([page.detach().to("cpu", self.dtype) for page in embeddings])
            save_file(
                {"vectors": vectors.contiguous(), "lengths": lengths},
                staged / "vectors.safetensors",
            )
            _atomic_write(staged / "doc.json", json.dumps(asdict(document), indent=2))
            _fsync_tree(staged)
            target = self._docs_dir() / document.doc_id
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staged, target)  # the commit point
            _fsync_dir(target.parent)
            self._remember(document, vectors, lengths)

    def delete(self, doc_id: str) -> Document:
        with self._lock:
            self._refresh()
            document = self._docs.get(doc_id)
            if document is None:
                raise DocumentNotFoundError(f"no document with id {doc_id}")
            trash = self.root / ".staging" / f"{os.getpid()}-deleted-{uuid.uuid4().hex}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self._docs_dir() / doc_id, trash)  # atomic: gone at once
            _fsync_dir(self._docs_dir())
            shutil.rmtree(trash, ignore_errors=True)
            self._forget(doc_id)
            return document

    # -- reading ----------------------------------------------------------------------------

    def documents(self) -> list[Document]:
        with self._lock:
            self._refresh()
            return sorted(self._docs.values(), key=lambda doc: (doc.added, doc.name))

    def get(self, doc_id: str) -> Document | None:
        with self._lock:
            self._refresh()
            return self._docs.get(doc_id)

    def page_image(self, doc_id: str, page_number: int) -> Path:
        return self._docs_dir() / doc_id / f"page-{page_number:04d}.png"

    def page_embedding(self, doc_id: str, page_number: int) -> torch.Tensor:
        with self._lock:
            self._refresh()
            if doc_id not in self._vectors:
                raise DocumentNotFoundError(f"no document with id {doc_id}")
            return self._vectors[doc_id][page_number - 1]

    def search(self, query: torch.Tensor, k: int) -> list[Hit]:
        packed, rows = self._packed_pages()
        if packed.n_pages == 0:
            return []
        scores = maxsim_packed(query, packed)
        hits = []
        for row, score in top_k(scores, k):
            doc_id, page_number = rows[row]
            name = self._docs[doc_id].name
            hits.append(Hit(doc_id, name, page_number, score, self.page_image(doc_id, page_number)))
        return hits

    # -- in-memory state --------------------------------------------------------------------

    def _docs_dir(self) -> Path:
        return self.root / "docs"

    def _packed_pages(self) -> tuple[PackedPages, list[tuple[str, int]]]:
        """Pack all pages once after each change; searches reuse it untouched."""
        with self._lock:
            self._refresh()
            if self._packed is None:
                pages, rows = [], []
                for doc in sorted(self._docs.values(), key=lambda d: (d.added, d.doc_id)):
                    pages.extend(self._vectors[doc.doc_id])
                    rows.extend((doc.doc_id, number) for number in range(1, doc.pages + 1))
                packed = PackedPages.from_pages([p.to(self.device) for p in pages], self.dtype)
                self._packed = (packed, rows)
            return self._packed

    def _refresh(self) -> None:
        """Reload from disk when another process (e.g. the CLI beside a server) changed docs/."""
        docs_dir = self._docs_dir()
        mtime = docs_dir.stat().st_mtime_ns if docs_dir.exists() else 0
        if mtime == self._seen_mtime:
            return
        self._check_header()
        on_disk = (
            {p.name for p in docs_dir.iterdir() if (p / "doc.json").exists()} if mtime else set()
        )
        for doc_id in set(self._docs) - on_disk:
            self._forget(doc_id)
        for doc_id in sorted(on_disk - set(self._docs)):
            self._load(docs_dir / doc_id)
        self._seen_mtime = mtime

    def _load(self, folder: Path) -> None:
        document = Document(**json.loads((folder / "doc.json").read_text()))
        tensors = load_file(folder / "vectors.safetensors")
        self._remember(document, tensors["vectors"].to(self.dtype), tensors["lengths"])

    def _remember(self, document: Document, vectors: torch.Tensor, lengths: torch.Tensor) -> None:
        self._docs[document.doc_id] = document
        self._vectors[document.doc_id] = list(torch.split(vectors, lengths.tolist()))
        self._packed = None

    def _forget(self, doc_id: str) -> None:
        self._docs.pop(doc_id, None)
        self._vectors.pop(doc_id, None)
        self._packed = None

    def _clear_staging(self) -> None:
        """Discard what a crashed or killed process left in .staging (each entry names its pid)."""
        parent = self.root / ".staging"
        if not parent.exists():
            return
        for entry in parent.iterdir():
            pid = entry.name.split("-", 1)[0]
            if not (pid.isdigit() and _alive(int(pid))):
                shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
