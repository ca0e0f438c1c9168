"""An answerer on a model server, through the OpenAI chat API (RAG_GENERATOR=openai:MODEL).

vLLM, Ollama, llama.cpp's server, TGI, hosted APIs and this app's own ``/v1`` all take the same
request: the earlier turns as text messages, then one user message with each page's label (and
words, with RAG_ANSWER_WITH_TEXT), the page itself as a base64 PNG ``image_url`` part sized
within the answerer's page budget, and the instruction, as the in-process answerer builds them.
Nothing loads locally: the answer streams back over server-sent events.

A refused connection, a 429 or a 5xx is tried again with back-off (``Retry-After`` honoured)
before any word is shown; every other failure is one ``ModelServerError`` line that says what
to change: server down, too slow, wrong key, unknown model, model without image input, pages
over its context. Closing ``stream`` (a stop button) closes the HTTP response, which a server
takes as a cancelled request.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from rag.chat import Turn, rewrite_prompt, standalone
from rag.config import REMOTE_GENERATOR, Settings
from rag.errors import ModelServerError
from rag.models.answerer import REWRITE_TOKENS, budgeted
from rag.models.families.base import INSTRUCTION, PAGE_TEXT_CHARS, PageImage, instruction

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

# Back-off before try n (from 0): BACKOFF_S * 2**n, at most MAX_BACKOFF_S, or the server's
# Retry-After up to that cap.
BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
CONNECT_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 3.0  # GET /models at start and after a 404: a check, not an answer
RETRIED = (429, 500, 502, 503, 504)
# Page images kept encoded (PNG, base64) for follow-ups over the same pages, at most this share
# of RAG_ANSWER_CACHE_MB: encoding a 1-megapixel page costs ~0.1 s, its text ~1 MB.
ENCODED_SHARE = 1.0
DATA_URL = "data:image/png;base64,"
PAGE_TEXT = "\nText of this page: "


def remote_model(generator: str) -> str | None:
    """The model a remote ``generator`` names (``openai:MODEL``); None for a local one.

    >>> remote_model("openai:Qwen/Qwen2.5-VL-7B-Instruct"), remote_model("Qwen/Qwen2-VL-2B")
    ('Qwen/Qwen2.5-VL-7B-Instruct', None)
    """
    if not generator.startswith(REMOTE_GENERATOR):
        return None
    return generator[len(REMOTE_GENERATOR) :].strip()


def fitted(image: Image.Image, max_pixels: int) -> Image.Image:
    """``image`` in RGB, scaled down (aspect kept) to at most ``max_pixels`` pixels; as it is
    when it fits already (so sizing twice changes nothing).

    >>> fitted(Image.new("RGB", (1000, 2000)), 500_000).size
    (500, 1000)
    """
    image = image.convert("RGB")
    width, height = image.size
    if width * height <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (width * height))
    size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def data_url(image: Image.Image) -> str:
    """``image`` as a ``data:`` URL of a PNG (lossless: the server sees the pixels sent)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return DATA_URL + base64.b64encode(buffer.getvalue()).decode("ascii")


def history_messages(history: Sequence[Turn]) -> list[dict]:
    """Earlier turns as OpenAI messages: the user's question, then the reply (if any)."""
    messages: list[dict] = []
    for turn in history:
        messages.append({"role": "user", "content": turn.question})
        if turn.answer:
            messages.append({"role": "assistant", "content": turn.answer})
    return messages


def chat_messages(question: str, pages: list[PageImage], history: Sequence[Turn], urls) -> list:
    """The request's messages: ``history``, then one user turn holding each page's caption and
    image (``urls[i]``, its data URL), then the instruction with ``question``: the in-process
    answerer's prompt, part for part."""
    content: list[dict] = []
    for page, url in zip(pages, urls, strict=True):
        content.append({"type": "text", "text": page.caption})
        content.append({"type": "image_url", "image_url": {"url": url}})
    content.append({"type": "text", "text": instruction(question, pages)})
    return [*history_messages(history), {"role": "user", "content": content}]


@dataclass(frozen=True)
class PagesRequest:
    """A chat request as this app's remote answerer writes it, read back: what a server that
    answers with the in-process answerer (this app's ``/v1``) passes to ``Answerer``."""

    question: str
    pages: list[PageImage]
    history: tuple[Turn, ...]


def pages_request(messages: Sequence[dict]) -> PagesRequest | None:
    """The inverse of ``chat_messages``: the question, the pages (label, words and decoded
    image) and the earlier turns; None for messages of another shape."""
    if not messages or messages[-1].get("role") != "user":
        return None
    content = messages[-1].get("content")
    if not isinstance(content, list) or len(content) < 3 or len(content) % 2 == 0:
        return None
    pairs = zip(content[:-1:2], content[1::2], strict=True)
    pages = [_page(caption, image) for caption, image in pairs]
    question = _question(content[-1])
    if None in pages or question is None:
        return None
    history = _turns(messages[:-1])
    return None if history is None else PagesRequest(question, pages, history)


def _page(caption: object, image: object) -> PageImage | None:
    if not (isinstance(caption, dict) and isinstance(image, dict)):
        return None
    if caption.get("type") != "text" or image.get("type") != "image_url":
        return None
    url = (image.get("image_url") or {}).get("url", "")
    if not url.startswith(DATA_URL):
        return None
    try:
        with Image.open(io.BytesIO(base64.b64decode(url[len(DATA_URL) :]))) as opened:
            picture = opened.convert("RGB")
    except (OSError, ValueError):
        return None
    label, _, text = caption.get("text", "").partition(PAGE_TEXT)
    return PageImage(label, picture, text[:PAGE_TEXT_CHARS])


def _question(part: object) -> str | None:
    head = INSTRUCTION.split("{example}")[0]
    if not isinstance(part, dict) or part.get("type") != "text":
        return None
    text = str(part.get("text", ""))
    if not text.startswith(head) or "\nQuestion: " not in text:
        return None
    return text.partition("\nQuestion: ")[2]


def _turns(messages: Sequence[dict]) -> tuple[Turn, ...] | None:
    turns: list[Turn] = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if not isinstance(content, str):
            return None
        if role == "user":
            turns.append(Turn(content, ""))
        elif role == "assistant" and turns and not turns[-1].answer:
            turns[-1] = Turn(turns[-1].question, content)
        else:
            return None
    return tuple(turns)


class EncodedPages:
    """Pages' data URLs by pixels and budget, least recently used out past ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._bytes = 0
        self._urls: OrderedDict[tuple, str] = OrderedDict()
        self._lock = threading.Lock()

    def url(self, page: PageImage, max_pixels: int) -> str:
        key = (hashlib.blake2b(page.image.tobytes(), digest_size=16).digest(), page.image.size)
        key += (page.image.mode, max_pixels)
        with self._lock:
            if key in self._urls:
                self._urls.move_to_end(key)
                return self._urls[key]
        url = data_url(fitted(page.image, max_pixels))
        with self._lock:
            if key not in self._urls and len(url) <= self.max_bytes:
                self._urls[key] = url
                self._bytes += len(url)
            while self._bytes > self.max_bytes:
                self._bytes -= len(self._urls.popitem(last=False)[1])
        return url


class RemoteAnswerer:
    """The answerer's verbs (``answer``, ``stream``, ``rewrite``) on a model server. Holds an
    HTTP connection pool, no model: it uses no local device (``on_device``)."""

    on_device = False

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        import httpx

        self.settings = settings
        self.model = remote_model(settings.generator) or ""
        self.url = settings.generator_url.rstrip("/")
        headers = {"Authorization": f"Bearer {settings.generator_key}"}
        timeout = httpx.Timeout(settings.generator_timeout_s, connect=CONNECT_TIMEOUT_S)
        self.client = httpx.Client(
            base_url=self.url,
            headers=headers if settings.generator_key else {},
            timeout=timeout,
            transport=transport,
        )
        self.encoded = EncodedPages(int(settings.answer_cache_mb * 2**20 * ENCODED_SHARE))

    @classmethod
    def load(cls, settings: Settings) -> RemoteAnswerer:
        """Nothing to load: the server is reached at the first question."""
        logger.info("answerer %s at %s", settings.generator, settings.generator_url)
        return cls(settings)

    def close(self) -> None:
        self.client.close()

    # -- the answerer's verbs ----------------------------------------------------------------

    def answer(
        self,
        question: str,
        pages: list[PageImage],
        max_new_tokens: int | None = None,
        history: Sequence[Turn] = (),
    ) -> str:
        """The whole answer at once (one request without streaming)."""
        body = self._body(self.messages(question, pages, history), max_new_tokens)
        return self._complete(body)

    def stream(
        self,
        question: str,
        pages: list[PageImage],
        max_new_tokens: int | None = None,
        history: Sequence[Turn] = (),
    ) -> Iterator[str]:
        """The answer as the server sends it, piece by piece; closing the iterator early closes
        the response (the server stops generating)."""
        body = self._body(self.messages(question, pages, history), max_new_tokens, stream=True)
        with self._response(body) as response:
            yield from self._deltas(response)

    def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        """``question`` as a standalone question, written by the server's model from the
        conversation ``history`` (one text-only turn)."""
        messages = [{"role": "user", "content": rewrite_prompt(question, history)}]
        return standalone(self._complete(self._body(messages, REWRITE_TOKENS)), question)

    def messages(self, question: str, pages: list[PageImage], history: Sequence[Turn] = ()):
        """The chat messages for ``question`` over ``pages`` (each within its pixel budget)."""
        if not pages:
            raise ValueError("no pages to answer from")
        pages = budgeted(pages, self.settings)
        limit = self.settings.answer_max_pixels
        urls = [self.encoded.url(page, page.budget(limit)) for page in pages]
        return chat_messages(question, pages, history, urls)

    def problem(self) -> str | None:
        """Why this server cannot answer, found with one ``GET /models`` (server down, wrong
        key, unknown model); None when it lists the model."""
        try:
            served = self._models()
        except ModelServerError as error:
            return str(error)
        if served is not None and self.model not in served:
            return self._unknown_model(served)
        return None

    # -- the wire ----------------------------------------------------------------------------

    def _body(self, messages: list, max_new_tokens: int | None, stream: bool = False) -> dict:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_new_tokens or self.settings.max_new_tokens,
            "temperature": 0,  # greedy, as the in-process answerer decodes
            "stream": stream,
        }
        return body

    def _complete(self, body: dict) -> str:
        with self._response(body) as response:
            response.read()
            try:
                choice = response.json()["choices"][0]
                return choice["message"].get("content") or ""
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                raise ModelServerError(
                    f"the model server at {self.url} sent an answer that is not a chat "
                    f"completion: {response.text[:120]!r}"
                ) from None

    @contextmanager
    def _response(self, body: dict) -> Iterator[httpx.Response]:
        """The server's 200 response to ``body`` (streamed), after the tries a refused
        connection, a 429 or a 5xx get; ModelServerError otherwise. Closed on exit."""
        import httpx

        tries = self.settings.generator_retries + 1
        for attempt in range(tries):
            last = attempt == tries - 1
            request = self.client.build_request("POST", "/chat/completions", json=body)
            try:
                response = self.client.send(request, stream=True)
            except httpx.ConnectError as error:
                if last:
                    raise self._unreachable(error, tries) from error
                self._wait(attempt, None)
                continue
            except httpx.TimeoutException as error:
                raise self._too_slow() from error
            if response.status_code == 200:
                break
            response.read()
            response.close()
            if response.status_code in RETRIED and not last:
                logger.info("model server: HTTP %s, trying again", response.status_code)
                self._wait(attempt, response.headers.get("retry-after"))
                continue
            raise self._refusal(response, tries)
        try:
            yield response
        except httpx.TimeoutException as error:
            raise self._too_slow() from error
        except httpx.TransportError as error:
            raise ModelServerError(
                f"the model server at {self.url} broke off the answer ({_first_line(error)})"
            ) from error
        finally:
            response.close()

    def _deltas(self, response: httpx.Response) -> Iterator[str]:
        """The text pieces of a server-sent event stream of chat completion chunks."""
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, comments (": ping"), event names
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                raise ModelServerError(
                    f"the model server at {self.url} sent a stream that is not JSON: {data[:80]!r}"
                ) from None
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk:
                raise ModelServerError(
                    f"the model server at {self.url} stopped the answer: {_message(chunk)}"
                )
            for choice in chunk.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece

    def _models(self) -> list[str] | None:
        """The model ids the server lists (None if it has no ``/models``)."""
        import httpx

        try:
            timeout = min(PROBE_TIMEOUT_S, self.settings.generator_timeout_s)
            response = self.client.get("/models", timeout=timeout)
        except httpx.ConnectError as error:
            raise self._unreachable(error, 1) from error
        except httpx.TimeoutException as error:
            raise self._too_slow() from error
        if response.status_code in (401, 403):
            raise self._refusal(response, 1)
        if response.status_code != 200:
            return None
        try:
            return [entry["id"] for entry in response.json()["data"]]
        except (ValueError, KeyError, TypeError):
            return None

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        delay = min(MAX_BACKOFF_S, BACKOFF_S * 2**attempt)
        if retry_after:  # seconds (an HTTP date keeps the back-off)
            with contextlib.suppress(ValueError):
                delay = min(MAX_BACKOFF_S, max(0.0, float(retry_after)))
        time.sleep(delay)

    # -- one line per failure ----------------------------------------------------------------

    def _unreachable(self, error: Exception, tries: int) -> ModelServerError:
        return ModelServerError(
            f"the model server at {self.url} is not reachable ({_first_line(error)}; "
            f"{_tries(tries)}): is it running? (RAG_GENERATOR_URL)"
        )

    def _too_slow(self) -> ModelServerError:
        return ModelServerError(
            f"the model server at {self.url} sent nothing for {self.settings.generator_timeout_s}"
            " s (RAG_GENERATOR_TIMEOUT_S)"
        )

    def _unknown_model(self, served: list[str]) -> str:
        listed = ", ".join(served[:8]) or "none"
        return (
            f"the model server at {self.url} has no model {self.model!r} (it serves: {listed}); "
            f"set RAG_GENERATOR={REMOTE_GENERATOR}ONE_OF_THEM"
        )

    def _refusal(self, response: httpx.Response, tries: int) -> ModelServerError:
        """One line for a non-200 answer, from its status and the server's own message (the
        OpenAI ``code`` first; servers differ in their words, so a few are read as well)."""
        status, message = response.status_code, _message(_json(response))
        where = f"the model server at {self.url}"
        if status in (401, 403):
            line = f"{where} refused the key (HTTP {status}: {message}); set RAG_GENERATOR_KEY"
        elif status == 404:
            line = self._not_found(message)
        elif status in RETRIED:
            line = f"{where} is busy or failing (HTTP {status}, {_tries(tries)}): {message}"
        else:
            line = self._bad_request(status, message)
        return ModelServerError(line)

    def _not_found(self, message: str) -> str:
        served = self._listed()
        if served is not None and self.model not in served:
            return self._unknown_model(served)
        if "model" in message.lower():
            return f"the model server at {self.url} has no model {self.model!r} ({message})"
        return (
            f"the model server at {self.url} has no {self.url}/chat/completions (HTTP 404): "
            "does RAG_GENERATOR_URL end with the API's base, such as /v1?"
        )

    def _bad_request(self, status: int, message: str) -> str:
        said, where = message.lower(), f"the model server at {self.url}"
        if status == 413 or _over_context(said):
            return (
                f"{where}: the pages and question are more than {self.model!r} takes "
                f"({message}); lower RAG_ANSWER_MAX_PIXELS or RAG_TOP_K"
            )
        if status in (400, 422) and _no_images(said):
            return (
                f"{where}: {self.model!r} does not take images ({message}); choose a "
                "vision-language model"
            )
        return f"{where} refused the request (HTTP {status}: {message})"

    def _listed(self) -> list[str] | None:
        try:
            return self._models()
        except ModelServerError:
            return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _message(body: Any) -> str:
    """The error message of a server's body: OpenAI's ``{"error": {"message"}}``, vLLM's
    ``{"message"}``, Ollama's ``{"error": "..."}``, or the text itself; one line."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            code = error.get("code")
            text = str(error.get("message") or error.get("detail") or "")
            if isinstance(code, str) and code not in text:
                text = f"{code}: {text}" if text else code
            return _first_line(text or json.dumps(body))
        return _first_line(str(error))
    return _first_line(str(body)) or "no message"


def _over_context(said: str) -> bool:
    words = ("context_length", "context length", "context window", "maximum context")
    return any(word in said for word in (*words, "too long", "too many tokens", "exceeds"))


def _no_images(said: str) -> bool:
    words = ("image", "multimodal", "multi-modal", "vision", "image_url")
    return any(word in said for word in words)


def _first_line(value: object) -> str:
    text = str(value).strip()
    return (text.splitlines() or [""])[0][:200]


def _tries(tries: int) -> str:
    return "1 try" if tries == 1 else f"{tries} tries"
