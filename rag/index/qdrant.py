"""QdrantIndex: page multi-vectors in a Qdrant collection, page images and records on disk.

Layout under ``root`` (the app's data dir, as for LocalIndex)::

    index.json                  {"format", "version", "retriever", "collection", "store",
                                 "location"}: checked on open
    docs/<doc_id>/doc.json      the Document record
    docs/<doc_id>/page-NNNN.png page images (the answerer and heatmaps read them)
    .staging/                   documents being added; anything here after a crash is junk

The collection holds one point per page: id ``uuid5(doc_id:page)``, payload ``{doc_id, name,
page_number}`` and the named multivector ``original`` (MAX_SIM over DOT: on L2-normalised
embeddings that is our MaxSim exactly). With a pool factor, a second multivector ``pooled``
(hierarchically pooled rows) is HNSW-indexed and searched first; its candidates are reranked on
``original``, as in Qdrant's ColPali tutorial. ``original`` itself has no HNSW graph: it is
scanned exactly or used to rerank. The collection's metadata records the retriever and the
data dir (``store``) it belongs to.

Order of writes: a document's points are upserted first, then its staged folder is renamed into
``docs/``; the rename is the commit. Writers in several processes take turns (``writer_lock``)
from the check that a document is new to its commit, so none upserts over another's document.
Only documents with a folder in ``docs/`` exist: search ignores points without one (a crash
between the two steps, or another process mid-add), and they are deleted on open. Delete
removes the folder first, then the points.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from rag.errors import DocumentNotFoundError, IndexMismatchError, RagError
from rag.index.base import Document, Hit, Index
from rag.index.files import (
    atomic_write,
    clear_staging,
    folder_version,
    fsync_dir,
    fsync_tree,
    staging_folder,
    trash_folder,
    writer_lock,
)
from rag.index.pooling import pool_pages

logger = logging.getLogger(__name__)

FORMAT = "visual-rag-qdrant-index"
VERSION = 1
ORIGINAL = "original"
POOLED = "pooled"
UPSERT_PAGES = 8  # pages per upsert request (a 750x128 page is ~1 MB of JSON)
SCROLL_POINTS = 1000
_POINT_NAMESPACE = uuid.UUID("5b7f0c1e-7d1a-4c36-9a57-0f6f4a3e2b11")


def point_id(doc_id: str, page_number: int) -> str:
    """The deterministic point id of one page: re-adding a page overwrites it."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{doc_id}:{page_number}"))


def default_collection(retriever_id: str, store: str) -> str:
    """``visual-rag-<retriever>-<store>``: one collection per retriever and data dir."""
    slug = re.sub(r"[^a-z0-9]+", "-", retriever_id.lower()).strip("-")
    return f"visual-rag-{slug}-{store[:8]}"


class QdrantIndex(Index):
    def __init__(
        self,
        root: Path,
        retriever_id: str,
        location: str,
        *,
        api_key: str | None = None,
        collection: str | None = None,
        pooled: int = 0,
        prefetch: int = 100,
        timeout: int = 60,
    ) -> None:
        """``location``: ``":memory:"``, a folder (qdrant-client's local mode, one process at a
        time) or an ``http(s)://host:port`` URL. ``pooled``: a pool factor; > 0 searches the
        pooled vectors first (a new collection then stores them; an existing one must have
        them) and reranks their best ``prefetch`` pages on the original vectors."""
        self.root = Path(root)
        self.retriever_id = retriever_id
        self.location = str(location)
        self.use_pooled = pooled > 0  # search: prefetch on "pooled", rerank on "original"
        self.pool_factor = max(pooled, 0)  # storage: the collection's own factor once it exists
        self.prefetch = prefetch
        self._remote = self.location.startswith(("http://", "https://"))
        self._lock = threading.RLock()
        self._docs: dict[str, Document] = {}
        self._seen: tuple[int, int, int] | None = None  # docs/ as last read (folder_version)
        self._dim: int | None = None
        header = self._open_header(collection)
        self.collection: str = header["collection"]
        self._store: str = header["store"]
        self._header_location: str = header.get("location", "")
        self.client = _connect(self.location, api_key, timeout)
        try:
            with _reported(self.location):
                self._check_collection()
                clear_staging(self.root)
                self._reconcile()
        except BaseException:
            self.client.close()
            raise

    # -- header and collection --------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        return self._dim

    def _open_header(self, collection: str | None) -> dict:
        """Check this data dir's header, or create it (once, even with racing processes)."""
        path = self.root / "index.json"
        while True:
            if path.exists():
                header = _read_json(path)
                self._check_header(header, collection)
                return header
            store = uuid.uuid4().hex
            header = {
                "format": FORMAT,
                "version": VERSION,
                "retriever": self.retriever_id,
                "collection": collection or default_collection(self.retriever_id, store),
                "store": store,
                "location": self.location if not self._remote else "server",
            }
            self.root.mkdir(parents=True, exist_ok=True)
            mine = self.root / f".index.json.{store}"
            atomic_write(mine, json.dumps(header, indent=2))
            try:
                os.link(mine, path)  # fails if another process created the header first
                fsync_dir(self.root)
                return header
            except FileExistsError:
                continue
            finally:
                mine.unlink()

    def _check_header(self, header: dict, collection: str | None) -> None:
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise IndexMismatchError(
                f"{self.root}: index format {header.get('format')} v{header.get('version')} is "
                f"not {FORMAT} v{VERSION}: use the --index it was built with, or another "
                "--data-dir"
            )
        if header.get("retriever") != self.retriever_id:
            raise IndexMismatchError(
                f"{self.root} was built with retriever {header.get('retriever')!r}, not "
                f"{self.retriever_id!r}: set RAG_RETRIEVER={header.get('retriever')} or use "
                "another --data-dir"
            )
        if collection and collection != header.get("collection"):
            raise IndexMismatchError(
                f"{self.root} belongs to Qdrant collection {header.get('collection')!r}, not "
                f"{collection!r}: use another --data-dir"
            )

    def _check_collection(self) -> None:
        """Read the collection's dimension, refusing one of another retriever or data dir."""
        if not self.client.collection_exists(self.collection):
            self._dim = None
            return
        config = self.client.get_collection(self.collection).config
        meta = config.metadata or {}  # servers before collection metadata keep none
        where = f"Qdrant collection {self.collection!r} at {self.location}"
        vectors = config.params.vectors
        if not isinstance(vectors, dict) or ORIGINAL not in vectors:
            raise IndexMismatchError(f"{where} was not made by this app (no {ORIGINAL!r} vector)")
        if meta.get("retriever", self.retriever_id) != self.retriever_id:
            raise IndexMismatchError(
                f"{where} was built with retriever {meta['retriever']!r}, not {self.retriever_id!r}"
            )
        if meta.get("store", self._store) != self._store:
            raise IndexMismatchError(f"{where} belongs to another data dir than {self.root}")
        self._dim = int(vectors[ORIGINAL].size)
        if POOLED not in vectors and self.use_pooled:
            raise IndexMismatchError(
                f"{where} was built without pooled vectors: set RAG_INDEX_MODE=exact or use "
                "another --data-dir"
            )
        # an exact search of a pooled collection is fine; new pages keep its pooling
        self.pool_factor = int(meta.get("pool_factor") or 3) if POOLED in vectors else 0

    def _ensure_collection(self, dim: int) -> None:
        if self._dim is None:
            self._check_collection()  # another process may have made it meanwhile
        if self._dim is None:
            self._create_collection(dim)
        if self._dim != dim:
            raise IndexMismatchError(
                f"Qdrant collection {self.collection!r} holds {self._dim}-d vectors, the "
                f"retriever gives {dim}-d"
            )

    def _create_collection(self, dim: int) -> None:
        from qdrant_client import models

        max_sim = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
        vectors = {
            ORIGINAL: models.VectorParams(
                size=dim,
                distance=models.Distance.DOT,
                multivector_config=max_sim,
                hnsw_config=models.HnswConfigDiff(m=0),  # scanned or reranked, never a graph
            )
        }
        if self.pool_factor:
            vectors[POOLED] = models.VectorParams(
                size=dim, distance=models.Distance.DOT, multivector_config=max_sim
            )
        metadata = {
            "format": FORMAT,
            "version": VERSION,
            "retriever": self.retriever_id,
            "store": self._store,
            "pool_factor": self.pool_factor,
        }
        try:
            self.client.create_collection(
                self.collection, vectors_config=vectors, metadata=metadata
            )
        except Exception:
            self._check_collection()  # lost a race with another process: theirs is fine
            if self._dim is None:
                raise
            return
        if self._remote:  # local mode has no payload indexes (and warns about them)
            self.client.create_payload_index(
                self.collection, "doc_id", models.PayloadSchemaType.KEYWORD, wait=True
            )
        self._dim = dim

    # -- adding and deleting ----------------------------------------------------------------

    def staging(self):
        return staging_folder(self.root)

    def add(self, document: Document, staged: Path, embeddings: Sequence[torch.Tensor]) -> bool:
        if len(embeddings) != document.pages:
            raise ValueError(f"{document.pages} pages but {len(embeddings)} embeddings")
        dim = int(embeddings[0].shape[-1])
        with self._lock, writer_lock(self.root), _reported(self.location):
            self._refresh()
            if document.doc_id in self._docs:
                return False  # committed by another writer while this one encoded
            self._ensure_collection(dim)
            # doc.json first: a live staging folder tells other processes its points are wanted
            atomic_write(staged / "doc.json", json.dumps(asdict(document), indent=2))
            fsync_tree(staged)
            target = self._docs_dir() / document.doc_id
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._upsert(document, embeddings)
                os.rename(staged, target)  # the commit point
            except BaseException:
                self._delete_points([document.doc_id], quiet=True)
                raise
            fsync_dir(target.parent)
            self._docs[document.doc_id] = document
            return True

    def _upsert(self, document: Document, embeddings: Sequence[torch.Tensor]) -> None:
        from qdrant_client import models

        for start in range(0, len(embeddings), UPSERT_PAGES):
            pages = [
                page.detach().to("cpu", torch.float32)
                for page in embeddings[start : start + UPSERT_PAGES]
            ]
            pooled = [None] * len(pages)
            if self.pool_factor:
                pooled = pool_pages(pages, self.pool_factor)
            points = []
            for offset, (page, rows) in enumerate(zip(pages, pooled, strict=True)):
                number = start + offset + 1
                vector = {ORIGINAL: page.tolist()}
                if rows is not None:
                    vector[POOLED] = rows.tolist()
                payload = {"doc_id": document.doc_id, "name": document.name, "page_number": number}
                points.append(
                    models.PointStruct(
                        id=point_id(document.doc_id, number), vector=vector, payload=payload
                    )
                )
            self.client.upsert(self.collection, points=points, wait=True)

    def delete(self, doc_id: str) -> Document:
        with self._lock, writer_lock(self.root):
            self._refresh()
            document = self._docs.get(doc_id)
            if document is None:
                raise DocumentNotFoundError(f"no document with id {doc_id}")
            trash = trash_folder(self.root)
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self._docs_dir() / doc_id, trash)  # the commit: gone at once
            fsync_dir(self._docs_dir())
            self._docs.pop(doc_id, None)
            shutil.rmtree(trash, ignore_errors=True)
            self._delete_points([doc_id], quiet=True)  # left over: ignored, removed on open
            return document

    def _delete_points(self, doc_ids: list[str], quiet: bool = False) -> None:
        from qdrant_client import models

        match = models.MatchAny(any=doc_ids)
        selector = models.FilterSelector(
            filter=models.Filter(must=[models.FieldCondition(key="doc_id", match=match)])
        )
        try:
            self.client.delete(self.collection, points_selector=selector, wait=True)
        except Exception as error:
            if not quiet:
                raise
            logger.warning(
                "could not delete the points of %s now (%s): they are ignored "
                "and removed on the next open",
                ", ".join(doc_ids),
                error,
            )

    def drop(self) -> None:
        """Delete the whole collection and this data dir's index folder (public sessions)."""
        with self._lock, _reported(self.location):
            if self.client.collection_exists(self.collection):
                self.client.delete_collection(self.collection)
            self.client.close()
            shutil.rmtree(self.root, ignore_errors=True)
            self._docs.clear()
            self._dim = None

    def close(self) -> None:
        """Release the client (and, in local mode, the storage folder's lock)."""
        self.client.close()

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
        with self._lock, _reported(self.location):
            self._refresh()
            document = self._docs.get(doc_id)
            if document is None:
                raise DocumentNotFoundError(f"no document with id {doc_id}")
            if not 1 <= page_number <= document.pages:
                raise IndexError(f"{document.name} has no page {page_number}")
            records = self.client.retrieve(
                self.collection,
                ids=[point_id(doc_id, page_number)],
                with_payload=False,
                with_vectors=[ORIGINAL],
            )
        if not records:
            raise DocumentNotFoundError(
                f"page {page_number} of {doc_id} has no vectors in {self.collection!r}"
            )
        return torch.tensor(records[0].vector[ORIGINAL], dtype=torch.float32)

    def search(self, query: torch.Tensor, k: int) -> list[Hit]:
        # one client call at a time: qdrant-client's local mode is not thread-safe
        with self._lock, _reported(self.location):
            self._refresh()
            if self._docs and self._dim is None:
                self._check_collection()  # made by another process since we opened
            if not self._docs or self._dim is None or k <= 0:
                return []
            if query.shape[-1] != self._dim:
                raise IndexMismatchError(
                    f"Qdrant collection {self.collection!r} holds {self._dim}-d vectors, the "
                    f"query is {query.shape[-1]}-d"
                )
            vector = query.detach().to("cpu", torch.float32).tolist()
            limit = k
            while True:  # points of uncommitted documents are skipped: ask for more if needed
                points = self._query(vector, limit)
                hits = [self._hit(point) for point in points]
                hits = [hit for hit in hits if hit is not None]
                if len(hits) >= k or len(points) < limit:
                    return hits[:k]
                limit *= 4

    def _hit(self, point: Any) -> Hit | None:
        document = self._docs.get(point.payload["doc_id"])
        if document is None:
            return None
        number = int(point.payload["page_number"])
        image = self.page_image(document.doc_id, number)
        return Hit(document.doc_id, document.name, number, float(point.score), image)

    def _query(self, vector: list[list[float]], limit: int) -> list[Any]:
        from qdrant_client import models

        options: dict[str, Any] = {}
        if self.use_pooled:
            options["prefetch"] = models.Prefetch(
                query=vector, using=POOLED, limit=max(self.prefetch, limit)
            )
        elif self._remote:  # local mode is always exact (and warns about search params)
            options["search_params"] = models.SearchParams(exact=True)
        response = self.client.query_points(
            self.collection,
            query=vector,
            using=ORIGINAL,
            limit=limit,
            with_payload=["doc_id", "page_number"],
            with_vectors=False,
            **options,
        )
        return response.points

    # -- local records ----------------------------------------------------------------------

    def _docs_dir(self) -> Path:
        return self.root / "docs"

    def _refresh(self) -> None:
        """Reload the records when another process changed docs/."""
        docs_dir = self._docs_dir()
        version = folder_version(docs_dir)
        if version == self._seen:
            return
        on_disk = set()
        if docs_dir.exists():
            on_disk = {p.name for p in docs_dir.iterdir() if (p / "doc.json").exists()}
        for doc_id in set(self._docs) - on_disk:
            self._docs.pop(doc_id)
        for doc_id in sorted(on_disk - set(self._docs)):
            try:
                self._docs[doc_id] = Document(**_read_json(docs_dir / doc_id / "doc.json"))
            except FileNotFoundError:  # deleted by another process since the listing
                continue
        self._seen = version

    def _reconcile(self) -> None:
        """Bring the collection and docs/ into agreement after a crash or a restart."""
        with self._lock:
            self._refresh()
            if self._dim is None:
                if not self._docs:
                    return
                if self.location == ":memory:" and self._header_location == ":memory:":
                    logger.warning(
                        "%s: the vectors of %d documents were in memory: discarding them",
                        self.root,
                        len(self._docs),
                    )
                    trash = trash_folder(self.root)
                    trash.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(self._docs_dir(), trash)
                    shutil.rmtree(trash, ignore_errors=True)
                    self._refresh()
                    return
                raise IndexMismatchError(
                    f"{self.root} lists {len(self._docs)} documents but Qdrant collection "
                    f"{self.collection!r} does not exist at {self.location}: point --index at "
                    "the Qdrant that holds it, or use another --data-dir"
                )
            orphans = self._stored_doc_ids() - set(self._docs) - _staged_doc_ids(self.root)
            if orphans:
                logger.info("removing the points of %d uncommitted documents", len(orphans))
                self._delete_points(sorted(orphans))

    def _stored_doc_ids(self) -> set[str]:
        doc_ids: set[str] = set()
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection,
                limit=SCROLL_POINTS,
                offset=offset,
                with_payload=["doc_id"],
                with_vectors=False,
            )
            doc_ids.update(record.payload["doc_id"] for record in records)
            if offset is None:
                return doc_ids


def _connect(location: str, api_key: str | None, timeout: int) -> Any:
    from qdrant_client import QdrantClient

    if location == ":memory:":
        return QdrantClient(location=":memory:")
    if location.startswith(("http://", "https://")):
        return QdrantClient(url=location, api_key=api_key, timeout=timeout)
    try:
        return QdrantClient(path=str(Path(location).expanduser()))
    except RuntimeError as error:
        if "already accessed" not in str(error):
            raise
        raise RagError(
            f"{location}: this Qdrant folder is in use by another process (local mode allows "
            "one): run a Qdrant server for shared access"
        ) from None


@contextmanager
def _reported(location: str) -> Iterator[None]:
    """Connection and server errors as one user-facing line."""
    from qdrant_client.http.exceptions import ApiException

    try:
        yield
    except ApiException as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RagError(f"Qdrant at {location}: {detail}") from error


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise IndexMismatchError(f"{path}: not readable JSON ({error})") from None


def _staged_doc_ids(root: Path) -> set[str]:
    """Documents that live processes are adding right now: their points must stay."""
    parent = root / ".staging"
    if not parent.exists():
        return set()
    doc_ids = set()
    for record in parent.glob("*/doc.json"):
        try:
            doc_ids.add(json.loads(record.read_text())["doc_id"])
        except (OSError, ValueError, KeyError):
            continue  # being written or removed
    return doc_ids
