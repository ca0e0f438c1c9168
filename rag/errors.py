"""Typed domain errors. Each carries a one-line, user-facing message."""

from __future__ import annotations

import re


class RagError(Exception):
    """Base of every error the app reports to a user as one line."""


class ConfigError(RagError, ValueError):
    """A setting with a value the app cannot use."""


class PdfError(RagError):
    """A file that cannot be indexed (a PDF, or an image or office file made into one)."""


class NotAPdfError(PdfError):
    pass


class EncryptedPdfError(PdfError):
    pass


class CorruptPdfError(PdfError):
    pass


class EmptyPdfError(PdfError):
    pass


class PdfTooLargeError(PdfError):
    pass


class PdfLimitError(PdfError):
    """A file that needed more time or memory to render than one file may take."""


class UnsupportedFileError(PdfError):
    """A type the app does not index, or a file whose content is not what its name says."""


class ConversionError(PdfError):
    """An image or office file that could not be made into a PDF."""


class OfficeUnavailableError(PdfError):
    """An office file on a machine without LibreOffice (PDFs and images still work)."""


class CollectionFullError(PdfError):
    """A collection already holding its maximum number of documents (public mode)."""


class ModelNotFoundError(RagError):
    """A checkpoint that is neither a local folder nor in the hub cache (or unreachable)."""


class UnsupportedModelError(RagError):
    """A checkpoint whose architecture is not one the app supports."""


class ModelServerError(RagError):
    """A model server (RAG_GENERATOR=openai:MODEL) that could not answer: not reachable, too
    slow, a refused key, an unknown model, a model without image input, pages over its context."""


class IndexMismatchError(RagError):
    """An index folder built by another retriever, dimension or format version."""


class DocumentNotFoundError(RagError):
    pass


class AmbiguousNameError(RagError):
    """A document name given where one document is meant, shared by several documents."""


class TagError(RagError):
    """A tag that is not valid, or a tag no document carries where one was expected."""


class AccessError(RagError):
    """A person, group, password or visibility that is not valid, or an action the caller may
    not take (never naming a document they may not read)."""


class EmptyIndexError(RagError):
    pass


_PATH = re.compile(r"""(?<![\w.:/])(?:~|/)(?:[^\s'"/]+/)+([^\s'"/]+)""")


def without_paths(message: str) -> str:
    """``message`` with every absolute path cut to its last part, so that no message a user
    reads names a folder of the server (a library's own message often quotes the path it was
    given).

    >>> without_paths("cannot identify image file '/srv/data/files/broken.png'")
    "cannot identify image file 'broken.png'"
    >>> without_paths("1/2 of pages; see https://example.org/a/b")
    '1/2 of pages; see https://example.org/a/b'
    """
    return _PATH.sub(r"\1", message)
