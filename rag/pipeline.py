"""The engine's composition: one collection of documents, its index, and the models it shares
with every other collection.

``Pipeline`` puts together the library side (``rag.library``: add, list, delete, tag, scope)
and the asking side (``rag.asking``: ask, search, the ``Answer``), each built on first use
over the collection's index and its hybrid search, and served by one set of ``Models``. The
CLI (app.py) and the web UI (ui/) call its verbs, through the engine's face (``rag``). Models
load lazily, once, on first use, so listing or deleting documents never loads one.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import logging
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from rag.access import ADMIN, Caller
from rag.asking import Answer, Asking
from rag.audit import Audit
from rag.chat import Turn
from rag.config import Settings
from rag.errors import RagError
from rag.index import Hit, HybridSearch, Index, hybrid_search, open_index, warm_kernels
from rag.library import IndexResult, Library
from rag.models.answerer import Answerer
from rag.models.checkpoints import resolve_device
from rag.models.loaded import Models
from rag.models.remote import PagesRequest, RemoteAnswerer
from rag.models.retriever import Retriever
from rag.people import People

logger = logging.getLogger(__name__)

__all__ = ["Answer", "IndexResult", "Models", "Pipeline"]

# Where collections made by Pipeline.collection live, under the data dir.
COLLECTIONS = "collections"
USERS = "users.json"  # the users store, under the data dir


def _verb(side: str, method: Callable) -> Callable:
    """A Pipeline verb that is one side's method (``library`` or ``asking``), called on that
    side as this collection built it, for the pipeline's ``caller`` when the method acts for
    one; it keeps the method's name and docstring."""
    acts_for = "caller" in inspect.signature(method).parameters

    @functools.wraps(method)
    def verb(self: Pipeline, *args, **kwargs):
        if acts_for:
            kwargs["caller"] = self.caller
        return method(getattr(self, side), *args, **kwargs)

    return verb


@dataclasses.dataclass
class _Parts:
    """A collection's stages, built on first use and shared by every caller's view of it."""

    index: Index | None = None
    search: HybridSearch | None = None
    library: Library | None = None
    asking: Asking | None = None
    people: People | None = None
    audit: Audit | None = None


def known_groups(people: People) -> Callable[[], set[str] | None]:
    """The groups a visibility may name: the users store's (None, any, while it has none)."""
    return lambda: people.groups() if people else None


class Pipeline:
    """One collection of documents (``settings.data_dir``), served by ``models``, as
    ``caller`` sees it (``acting_for``): the CLI is an admin (``rag.access.ADMIN``), a web
    request the person signed in."""

    def __init__(
        self,
        settings: Settings,
        index: Index | None = None,
        models: Models | None = None,
        caller: Caller = ADMIN,
    ) -> None:
        self.settings = settings
        self._parts = _Parts(index)
        self.models = models or Models(settings)
        self.caller = caller

    def acting_for(self, caller: Caller) -> Pipeline:
        """This collection as ``caller`` sees it: every verb lists, finds, searches and
        changes only what they may (``rag.access``). It shares everything else (the index,
        the models): making one costs nothing."""
        view = copy.copy(self)
        view.caller = caller
        return view

    def collection(self, name: str, **limits: int) -> Pipeline:
        """Another collection of documents, ``name`` (letters, digits, ``-`` and ``_``): its own
        index under ``<data-dir>/collections/NAME``, served by the same loaded models;
        ``limits`` override Settings fields such as max_documents or max_pages."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ValueError(f"not a collection name: {name!r}")
        data_dir = self.settings.data_dir / COLLECTIONS / name
        settings = dataclasses.replace(self.settings, data_dir=data_dir, **limits)
        return Pipeline(settings, models=self.models, caller=self.caller)

    def drop(self) -> None:
        """Delete this collection: its documents, its vectors (a Qdrant collection too) and its
        folder. A public session's collection ends this way."""
        index = self.index
        try:
            index.drop()
        finally:
            if self._parts.search is not None:
                self._parts.search.close()
            index.close()
            shutil.rmtree(self.settings.data_dir, ignore_errors=True)

    def drop_collections(self) -> None:
        """Delete every collection made by ``collection`` (e.g. public sessions a previous run
        of the app left behind), each through its index, so vectors held elsewhere go too."""
        root = self.settings.data_dir / COLLECTIONS
        for folder in sorted(root.iterdir()) if root.exists() else []:
            try:
                self.collection(folder.name).drop()
            except (RagError, ValueError) as error:  # another app's folder, a mismatched index
                logger.warning("collection %s: %s; removing its folder", folder.name, error)
        shutil.rmtree(root, ignore_errors=True)

    def model_problems(self) -> list[str]:
        """Why the retriever, the answerer or the reranker could not load, found without loading
        any (their configs are read, not their weights; a model server is asked for its models):
        one line each, naming the model and the fix; empty when all are found and supported."""
        from rag.config import parse_reranker
        from rag.models.checkpoints import locate
        from rag.models.families import answerer_family, retriever_family
        from rag.models.remote import remote_model
        from rag.models.rerankers import check

        checks = [(self.settings.retriever, "RAG_RETRIEVER", retriever_family)]
        if remote_model(self.settings.generator) is None:
            checks.append((self.settings.generator, "RAG_GENERATOR", answerer_family))
        reranker = parse_reranker(self.settings.reranker)
        if reranker is not None:
            kind, model_id = reranker
            checks.append((model_id, "RAG_RERANKER", functools.partial(check, kind)))
        problems = []
        for model_id, setting, family_of in checks:
            try:
                family_of(locate(model_id, setting))
            except RagError as error:
                problems.append(str(error))
        if remote_model(self.settings.generator) is not None:
            problems += filter(None, [self.models.answerer.problem()])
        return problems

    def warm(self, search: bool = True) -> None:
        """Prepare before the first request: the index's search layout (``search``) and what
        every index of this kind shares (binary mode's popcount kernel, compiled once per
        process for every collection)."""
        if search:
            self.index.warm()
        else:
            warm_kernels(self.settings)

    # -- the stages, built on first use ------------------------------------------------------

    @property
    def index(self) -> Index:
        parts = self._parts
        if parts.index is None:
            parts.index = open_index(self.settings, resolve_device(self.settings.device))
        return parts.index

    @property
    def search_index(self) -> HybridSearch:
        """The index's pages searched by pictures and words (``rag.index.hybrid``)."""
        if self._parts.search is None:
            self._parts.search = hybrid_search(self.index)
        return self._parts.search

    @property
    def people(self) -> People:
        """The users store (``rag.people``): ``<data-dir>/users.json``."""
        if self._parts.people is None:
            self._parts.people = People(self.settings.data_dir / USERS)
        return self._parts.people

    @property
    def audit(self) -> Audit:
        """The audit log (``rag.audit``; writes nothing unless RAG_AUDIT_LOG is set)."""
        if self._parts.audit is None:
            settings = self.settings
            path = Path(settings.audit_log) if settings.audit_log else None
            mb = settings.audit_max_mb
            self._parts.audit = Audit(path, mb * 1024 * 1024, settings.audit_backups)
        return self._parts.audit

    @property
    def library(self) -> Library:
        if self._parts.library is None:
            self._parts.library = Library(
                self.settings,
                self.models,
                self.index,
                self.search_index,
                groups=known_groups(self.people),  # not a method: no cycle back to self
                record=self.audit.record,
            )
        return self._parts.library

    @property
    def asking(self) -> Asking:
        if self._parts.asking is None:
            self._parts.asking = Asking(self.settings, self.models, self.library, self.search_index)
        return self._parts.asking

    @property
    def retriever(self) -> Retriever:
        return self.models.retriever

    @property
    def answerer(self) -> Answerer | RemoteAnswerer:
        return self.models.answerer

    # -- the verbs: each side's own, under the same name, signature and docstring ------------

    add_file = _verb("library", Library.add_file)
    add_images = _verb("library", Library.add_images)
    add_paths = _verb("library", Library.add_paths)
    documents = _verb("library", Library.documents)
    find = _verb("library", Library.find)
    page_image = _verb("library", Library.page_image)
    delete = _verb("library", Library.delete)
    tag = _verb("library", Library.tag)
    share = _verb("library", Library.share)
    scope = _verb("library", Library.scope)
    ask = _verb("asking", Asking.ask)
    standalone = _verb("asking", Asking.standalone)

    def search(
        self,
        question: str,
        top_k: int | None = None,
        docs: Iterable[str] = (),
        tags: Iterable[str] = (),
        *,
        history: Iterable[Turn] = (),
        rerank: bool | None = None,
    ) -> list[Hit]:
        """The best pages for ``question`` alone (no answer is written); ``rerank`` as
        ``Asking.ask`` takes it."""
        asking = self.asking
        answer = asking.ask(
            question, top_k, docs, tags, history=history, rerank=rerank, caller=self.caller
        )
        return answer.hits

    def answer_pages(
        self, request: PagesRequest, max_new_tokens: int | None = None
    ) -> Iterator[str]:
        """The answer to a request that brings its own pages (``rag.models.remote``'s, read
        back by ``pages_request``): the answerer alone, no search, as it streams; what this
        app's ``/v1`` writes when another copy of the app uses it as its model server."""
        answerer = self.models.answerer
        with self.models.answering():
            yield from answerer.stream(
                request.question, request.pages, max_new_tokens, request.history
            )
