"""QdrantIndex: page multi-vectors in a Qdrant collection, page images and records on disk.

Documents live in a ``DocumentStore`` (rag.index.store) under ``root``, as for LocalIndex; its
header ``index.json`` holds {"format", "version", "retriever", "collection", "store",
"location"}, checked on open.

The collection holds one point per page: id ``uuid5(doc_id:page)``, payload ``{doc_id, name,
page_number}`` and the named multivector ``original`` (MAX_SIM over DOT: on L2-normalised
embeddings that is our MaxSim exactly). With a pool factor, a second multivector ``pooled``
(hierarchically pooled rows) is HNSW-indexed and searched first; its candidates are reranked on
``original``, as in Qdrant's ColPali tutorial. ``original`` itself has no HNSW graph: it is
scanned exactly or used to rerank. The sparse vector ``text`` holds the page's words (BM25,
with Qdrant's IDF modifier): a hybrid search prefetches both and fuses them in Qdrant (RRF), in
one batch request with each side's own ranking. The collection's metadata records the retriever
and the data dir (``store``) it belongs to. A collection made before pages had words lacks
``text`` (Qdrant cannot add one): its words are searched beside the document store instead.

Order of writes: a document's points are upserted first, then its staged folder is renamed into
``docs/``; the rename is the commit. Both happen under the store's writer lock, after its check
that the document is new, so no process upserts over another's document.
Only documents with a folder in ``docs/`` exist: search ignores points without one (a crash
between the two steps, or another process mid-add), and they are deleted on open. Delete
removes the folder first, then the points.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from rag.config import Settings
from rag.errors import DocumentNotFoundError, IndexMismatchError, RagError
from rag.index.base import Index
from rag.index.fusion import RRF_K, fuse
from rag.index.hybrid import HYBRID_DEPTH, HybridSearch
from rag.index.lexical import TextHit
from rag.index.pooling import pool_pages
from rag.index.records import Document, Hit
from rag.index.sparse import page_vector, query_vector
from rag.index.store import DocumentStore, load_texts

logger = logging.getLogger(__name__)

FORMAT = "visual-rag-qdrant-index"
VERSION = 1
ORIGINAL = "original"
POOLED = "pooled"
TEXT = "text"  # the pages' words: sparse BM25 vectors, IDF from Qdrant (rag.index.sparse)
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


class QdrantHybridSearch(HybridSearch):
    """Qdrant's pictures and words searched and fused in one request (``search_native``); a
    collection made before it kept sparse vectors searches its words in the local word index,
    as the local backend does."""

    index: QdrantIndex

    def index_words(self) -> None:
        if not self.index.has_words:
            super().index_words()

    def search(
        self,
        query: torch.Tensor,
        question: str,
        k: int,
        scope: Collection[str] | None = None,
        *,
        mode: str = "rrf",
        weight: float = 0.3,
    ) -> list[Hit]:
        if mode == "off" or not self.index.has_words:
            return super().search(query, question, k, scope, mode=mode, weight=weight)
        fusion = (mode, weight)
        return self.index.search_native(
            query, question, k, scope, fusion=fusion, text_hit=self.text_hit
        )


class QdrantIndex(Index):
    hybrid = QdrantHybridSearch  # rag.index.hybrid.hybrid_search

    def __init__(
        self,
        root: Path,
        retriever_id: str,
        location: str,
        *,
        api_key: str | None = None,
        collection: str | None = None,
        pooled: int = 0,
        prefetch: int = Settings.rerank,
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
        self.store = DocumentStore(self.root)
        self._dim: int | None = None
        self._has_text = True  # a new collection gets the sparse vectors
        header = self._open_header(collection)
        self.collection: str = header["collection"]
        self._store: str = header["store"]
        self._header_location: str = header.get("location", "")
        self.client = _connect(self.location, api_key, timeout)
        try:
            with _reported(self.location):
                self._check_collection()
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
        store = uuid.uuid4().hex
        header = self.store.create_header(
            {
                "format": FORMAT,
                "version": VERSION,
                "retriever": self.retriever_id,
                "collection": collection or default_collection(self.retriever_id, store),
                "store": store,
                "location": self.location if not self._remote else "server",
            }
        )
        hint = "use the --index it was built with, or another --data-dir"
        self.store.check_header(header, FORMAT, VERSION, self.retriever_id, hint)
        if collection and collection != header.get("collection"):
            raise IndexMismatchError(
                f"{self.root} belongs to Qdrant collection {header.get('collection')!r}, not "
                f"{collection!r}: use another --data-dir"
            )
        return header

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
        self._has_text = TEXT in (config.params.sparse_vectors or {})
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
            sparse = {TEXT: models.SparseVectorParams(modifier=models.Modifier.IDF)}
            self.client.create_collection(
                self.collection,
                vectors_config=vectors,
                sparse_vectors_config=sparse,
                metadata=metadata,
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
        self._dim, self._has_text = dim, True

    # -- adding and deleting ----------------------------------------------------------------

    def add(self, document: Document, staged: Path, embeddings: Sequence[torch.Tensor]) -> bool:
        if len(embeddings) != document.pages:
            raise ValueError(f"{document.pages} pages but {len(embeddings)} embeddings")
        dim = int(embeddings[0].shape[-1])

        texts = {page.page_number: page.text for page in load_texts(staged)}

        def upsert() -> None:  # under the writer lock, once the document is known to be new
            self._ensure_collection(dim)
            self._upsert(document, embeddings, texts)

        def undo() -> None:  # an upsert or rename that failed: no points left behind
            self._delete_points([document.doc_id], quiet=True)

        def retired(old: str) -> None:  # the version ``document`` replaces: its points go
            self._delete_points([old], quiet=True)

        with self._lock, _reported(self.location):
            return self.store.commit(document, staged, upsert, undo, retired)

    def _upsert(
        self,
        document: Document,
        embeddings: Sequence[torch.Tensor],
        texts: dict[int, str] | None = None,
    ) -> None:
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
                vector: dict[str, Any] = {ORIGINAL: page.tolist()}
                if rows is not None:
                    vector[POOLED] = rows.tolist()
                if self._has_text and texts and texts.get(number):
                    indices, values = page_vector(texts[number])
                    vector[TEXT] = models.SparseVector(indices=indices, values=values)
                payload = {"doc_id": document.doc_id, "name": document.name, "page_number": number}
                points.append(
                    models.PointStruct(
                        id=point_id(document.doc_id, number), vector=vector, payload=payload
                    )
                )
            self.client.upsert(self.collection, points=points, wait=True)

    def delete(self, doc_id: str) -> Document:
        with self._lock:
            # left over if Qdrant is unreachable now: ignored, and removed on the next open
            return self.store.delete(doc_id, then=lambda: self._delete_points([doc_id], True))

    def _delete_points(self, doc_ids: list[str], quiet: bool = False) -> None:
        from qdrant_client import models

        selector = models.FilterSelector(filter=_doc_filter(doc_ids))
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
            self.store.drop()
            self._dim = None

    def close(self) -> None:
        """Release the client (and, in local mode, the storage folder's lock)."""
        self.client.close()

    # -- reading ----------------------------------------------------------------------------

    def page_embedding(self, doc_id: str, page_number: int) -> torch.Tensor:
        with self._lock, _reported(self.location):
            document = self.store.get(doc_id)
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

    def search(
        self, query: torch.Tensor, k: int, scope: Collection[str] | None = None
    ) -> list[Hit]:
        # one client call at a time: qdrant-client's local mode is not thread-safe
        with self._lock, _reported(self.location):
            self.store.refresh()
            if len(self.store) and self._dim is None:
                self._check_collection()  # made by another process since we opened
            self._check_scope(scope)
            empty_scope = scope is not None and not scope
            if not len(self.store) or self._dim is None or k <= 0 or empty_scope:
                return []
            if query.shape[-1] != self._dim:
                raise IndexMismatchError(
                    f"Qdrant collection {self.collection!r} holds {self._dim}-d vectors, the "
                    f"query is {query.shape[-1]}-d"
                )
            vector = query.detach().to("cpu", torch.float32).tolist()
            within = None if scope is None else _doc_filter(sorted(set(scope)))
            limit = k
            while True:  # points of uncommitted documents are skipped: ask for more if needed
                points = self._query(vector, limit, within)
                hits = [self._hit(point) for point in points]
                hits = [hit for hit in hits if hit is not None]
                if len(hits) >= k or len(points) < limit:
                    return hits[:k]
                limit *= 4

    @property
    def has_words(self) -> bool:
        """Whether the collection keeps the pages' words as sparse vectors."""
        return self._has_text

    def search_native(
        self,
        query: torch.Tensor,
        question: str,
        k: int,
        scope: Collection[str] | None,
        *,
        fusion: tuple[str, float],
        text_hit: Callable[[TextHit], Hit],
    ) -> list[Hit]:
        """Pictures and words searched in Qdrant: the page multivectors and the sparse BM25
        vectors, fused there (RRF) in the same batch request that brings each side's ranking
        (whose scores each hit keeps); ``weighted`` (``fusion``: mode and weight) fuses those
        two rankings here, ``text_hit`` making the hit of a page only the words found."""
        mode, weight = fusion
        indices, values = query_vector(question)
        with self._lock, _reported(self.location):
            self.store.refresh()
            self._check_scope(scope)
            if (
                not len(self.store)
                or self._dim is None
                or k <= 0
                or (scope is not None and not scope)
            ):
                return []
            within = None if scope is None else _doc_filter(sorted(set(scope)))
            depth = max(k, HYBRID_DEPTH)
            vector = query.detach().to("cpu", torch.float32).tolist()
            visual, text, fused = self._hybrid_batch(vector, (indices, values), depth, within)
        pictures = [h for h in map(self._hit, visual) if h is not None] if mode != "text" else []
        words = [
            TextHit(p.payload["doc_id"], int(p.payload["page_number"]), float(p.score))
            for p in text
            if self.store.known(p.payload["doc_id"])
        ]
        if mode == "rrf":  # Qdrant's order; each side's scores from its own ranking
            return self._with_sides(fused, pictures, words, k)
        mode = "rrf" if mode == "text" else mode  # one ranking: its own order
        return fuse(pictures, words, k, text_hit, mode=mode, weight=weight)

    def _hybrid_batch(self, vector, sparse, depth: int, within: Any) -> list[list[Any]]:
        """One request: the pictures' ranking, the words', and Qdrant's RRF of the two."""
        from qdrant_client import models

        words = models.SparseVector(indices=sparse[0], values=sparse[1])
        picture_options = {}
        if self._remote and not self.use_pooled:
            picture_options["params"] = models.SearchParams(exact=True)
        sides = [
            models.Prefetch(
                query=vector, using=ORIGINAL, limit=depth, filter=within, **picture_options
            ),
            models.Prefetch(query=words, using=TEXT, limit=depth, filter=within),
        ]
        fields = ["doc_id", "page_number"]
        requests = [
            models.QueryRequest(
                query=vector,
                using=ORIGINAL,
                limit=depth,
                filter=within,
                with_payload=fields,
                **picture_options,
            ),
            models.QueryRequest(
                query=words, using=TEXT, limit=depth, filter=within, with_payload=fields
            ),
            models.QueryRequest(
                prefetch=sides,
                query=models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
                limit=depth,
                with_payload=fields,
            ),
        ]
        responses = self.client.query_batch_points(self.collection, requests=requests)
        return [response.points for response in responses]

    def _with_sides(
        self, fused: list[Any], pictures: list[Hit], words: list[TextHit], k: int
    ) -> list[Hit]:
        seen = {(h.doc_id, h.page_number): h.score for h in pictures}
        read = {(t.doc_id, t.page_number): t.score for t in words}
        hits = []
        for point in fused:
            hit = self._hit(point)
            if hit is None:
                continue
            key = (hit.doc_id, hit.page_number)
            hits.append(
                dataclasses.replace(hit, visual_score=seen.get(key), text_score=read.get(key))
            )
            if len(hits) == k:
                break
        return hits

    def _check_scope(self, scope: Collection[str] | None) -> None:
        if scope is not None:
            missing = sorted(doc_id for doc_id in set(scope) if not self.store.known(doc_id))
            if missing:
                raise DocumentNotFoundError(f"no document with id {', '.join(missing)}")

    def _hit(self, point: Any) -> Hit | None:
        document = self.store.known(point.payload["doc_id"])
        if document is None:
            return None
        number = int(point.payload["page_number"])
        image = self.page_image(document.doc_id, number)
        return Hit(
            document.doc_id, document.name, number, float(point.score), image, unit=document.unit
        )

    def _query(self, vector: list[list[float]], limit: int, within: Any = None) -> list[Any]:
        """The best points on the original vectors (after a pooled prefetch in pooled mode),
        among those matching the filter ``within`` (a scope) if given, in both stages."""
        from qdrant_client import models

        options: dict[str, Any] = {"query_filter": within}
        if self.use_pooled:
            options["prefetch"] = models.Prefetch(
                query=vector, using=POOLED, limit=max(self.prefetch, limit), filter=within
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

    def _reconcile(self) -> None:
        """Bring the collection and docs/ into agreement after a crash or a restart."""
        with self._lock:
            documents = self.store.documents()
            if self._dim is None:
                if not documents:
                    return
                if self.location == ":memory:" and self._header_location == ":memory:":
                    logger.warning(
                        "%s: the vectors of %d documents were in memory: discarding them",
                        self.root,
                        len(documents),
                    )
                    self.store.clear()
                    return
                raise IndexMismatchError(
                    f"{self.root} lists {len(documents)} documents but Qdrant collection "
                    f"{self.collection!r} does not exist at {self.location}: point --index at "
                    "the Qdrant that holds it, or use another --data-dir"
                )
            committed = {document.doc_id for document in documents}
            orphans = self._stored_doc_ids() - committed - self.store.staged_doc_ids()
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


def _doc_filter(doc_ids: list[str]) -> Any:
    """Points of these documents (the payload's ``doc_id``, indexed on servers)."""
    from qdrant_client import models

    match = models.MatchAny(any=doc_ids)
    return models.Filter(must=[models.FieldCondition(key="doc_id", match=match)])


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
