"""The engine's composition: one collection of documents, its index, and the models it shares
with every other collection.

``Pipeline`` puts together the library side (``rag.library``: add, list, delete, tag, scope)
and the asking side (``rag.asking``: ask, search, the ``Answer``), each built on first use
over the collection's index and its hybrid search, and served by one set of ``Models``. The
CLI (app.py) and the web UI (ui/) call its verbs, through the engine's face (``rag``). Models
load lazily, once, on first use, so listing or deleting documents never loads one.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import shutil
from collections.abc import Callable, Iterable, Iterator

from rag.asking import Answer, Asking
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

logger = logging.getLogger(__name__)

__all__ = ["Answer", "IndexResult", "Models", "Pipeline"]

# Where collections made by Pipeline.collection live, under the data dir.
COLLECTIONS = "collections"


def _verb(side: str, method: Callable) -> Callable:
    """A Pipeline verb that is one side's method (``library`` or ``asking``), called on that
    side as this collection built it; it keeps the method's name, signature and docstring."""

    @functools.wraps(method)
    def verb(self: Pipeline, *args, **kwargs):
        return method(getattr(self, side), *args, **kwargs)

    return verb


class Pipeline:
    """One collection of documents (``settings.data_dir``), served by ``models``."""

    def __init__(
        self, settings: Settings, index: Index | None = None, models: Models | None = None
    ) -> None:
        self.settings = settings
        self._index = index
        self._search: HybridSearch | None = None
        self._library: Library | None = None
        self._asking: Asking | None = None
        self.models = models or Models(settings)

    def collection(self, name: str, **limits: int) -> Pipeline:
        """Another collection of documents, ``name`` (letters, digits, ``-`` and ``_``): its own
        index under ``<data-dir>/collections/NAME``, served by the same loaded models;
        ``limits`` override Settings fields such as max_documents or max_pages."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ValueError(f"not a collection name: {name!r}")
        data_dir = self.settings.data_dir / COLLECTIONS / name
        settings = dataclasses.replace(self.settings, data_dir=data_dir, **limits)
        return Pipeline(settings, models=self.models)

    def drop(self) -> None:
        """Delete this collection: its documents, its vectors (a Qdrant collection too) and its
        folder. A public session's collection ends this way."""
        index = self.index
        try:
            index.drop()
        finally:
            if self._search is not None:
                self._search.close()
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
        """Why the retriever or the answerer could not load, found without loading either (their
        configs are read, not their weights; a model server is asked for its models): one line
        each, naming the model and the fix; empty when both are found and supported."""
        from rag.models.checkpoints import locate
        from rag.models.families import answerer_family, retriever_family
        from rag.models.remote import remote_model

        checks = [(self.settings.retriever, "RAG_RETRIEVER", retriever_family)]
        if remote_model(self.settings.generator) is None:
            checks.append((self.settings.generator, "RAG_GENERATOR", answerer_family))
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
        if self._index is None:
            self._index = open_index(self.settings, resolve_device(self.settings.device))
        return self._index

    @property
    def search_index(self) -> HybridSearch:
        """The index's pages searched by pictures and words (``rag.index.hybrid``)."""
        if self._search is None:
            self._search = hybrid_search(self.index)
        return self._search

    @property
    def library(self) -> Library:
        if self._library is None:
            self._library = Library(self.settings, self.models, self.index, self.search_index)
        return self._library

    @property
    def asking(self) -> Asking:
        if self._asking is None:
            self._asking = Asking(self.settings, self.models, self.library, self.search_index)
        return self._asking

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
    ) -> list[Hit]:
        """The best pages for ``question`` alone (no answer is written)."""
        return self.asking.ask(question, top_k, docs, tags, history=history).hits

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
