"""One frozen Settings object: every tunable of the engine, read once from the environment."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rag.errors import ConfigError

Device = Literal["auto", "cuda", "mps", "cpu"]
Precision = Literal["auto", "float32", "bfloat16", "float16"]
IndexMode = Literal["auto", "exact", "pooled", "binary"]
Hybrid = Literal["rrf", "weighted", "off", "text"]

DEFAULT_RETRIEVER = "vidore/colqwen2-v1.0"  # MIT adapter, Apache-2.0 base; ViDoRe 89.3
DEFAULT_GENERATOR = "Qwen/Qwen2-VL-2B-Instruct"  # Apache-2.0, fits a 16 GB GPU
AUTO_BINARY_PAGES = 500  # measured: see Settings.auto_binary_pages
# RAG_GENERATOR=openai:MODEL: the answerer is MODEL on a model server (rag.models.remote).
REMOTE_GENERATOR = "openai:"


@dataclass(frozen=True)
class Settings:
    # Models and page budgets for the machine (rag.profiles): "auto" picks "gpu" (the defaults
    # below) on a CUDA or Apple GPU, "cpu" (small models, small pages) elsewhere; RAG_* wins.
    profile: str = "auto"
    data_dir: Path = Path("data")
    retriever: str = DEFAULT_RETRIEVER
    generator: str = DEFAULT_GENERATOR
    # (vLLM, Ollama, llama.cpp's server, this app's own /v1, a hosted API), e.g.
    # http://localhost:8000/v1.
    generator_url: str = ""
    generator_key: str = dataclasses.field(default="", repr=False)  # a secret: never printed
    # What a model server may take: seconds without a byte (connecting, before the first token,
    # between two), and tries again after a refused connection, a 429 or a 5xx (with back-off).
    generator_timeout_s: int = 120
    generator_retries: int = 2
    device: Device = "auto"
    # "auto": bf16 on CUDA and on CPUs with bf16 instructions (2x fp32's speed there); fp32 on
    # MPS and other CPUs. Never fp16 compute on CPU (~3000x slower than bf16).
    dtype: Precision = "auto"
    # 144 DPI keeps 10 pt text legible after the retriever downsizes the page.
    dpi: int = 144
    # Pixel cap per rendered page (~ A3 at 200 DPI); larger pages are rendered at a lower DPI.
    max_page_pixels: int = 12_000_000
    # Pages rendered per poppler call: bounds memory on a 500-page PDF.
    render_chunk_pages: int = 8
    # What one file may cost: poppler runs in a child process killed after this many seconds in
    # all (inspection and every page) and unable to allocate more than this many MB.
    render_timeout_s: int = 120
    render_memory_mb: int = 1024
    # ... and after this many seconds on one page: a pathological page is refused in seconds,
    # while long documents keep the whole file's budget (a dense real page takes ~1 s at 144 DPI).
    render_page_timeout_s: int = 20
    max_pages: int = 2000
    max_file_mb: int = 500
    max_documents: int = 0  # per collection; 0 = unlimited (public mode sets a cap)
    # Pages per retriever forward pass; 0: auto (on CUDA from free memory, else 1).
    batch_size: int = 0
    # Threads preparing pages for the encoder while it works: chunks rendered at once (each its
    # own poppler process) and batches preprocessed at once. 0: auto (half the CPU cores, 1-8).
    page_workers: int = 0
    # ColQwen's resolution knob: at most this many visual tokens per page (0: the checkpoint's).
    max_visual_tokens: int = 0
    # "int8": the models' linear layers in int8 (dynamic quantisation, CPU only): faster
    # decoding and encoding, slightly different vectors and answers (docs/performance.md).
    quantize: Literal["none", "int8"] = "none"
    # Attention kernel for the models: "auto" (transformers' choice, sdpa where supported),
    # "sdpa", "eager", "flash_attention_2" (needs the flash-attn package and a GPU), or
    # "cpu_bf16" (rag.models.attention: the vision towers' attention in bf16 matmuls on the CPU).
    attn_implementation: str = "auto"
    top_k: int = 3
    max_new_tokens: int = 512
    # Pixel budget per page image handed to the answerer (Qwen: multiples of 28x28).
    answer_min_pixels: int = 256 * 28 * 28
    answer_max_pixels: int = 1280 * 28 * 28
    # ... for the best page only when set: the answer's other pages get this budget (context
    # at a lower resolution, sooner: docs/performance.md); 0: the same as the best page's.
    answer_rest_max_pixels: int = 0
    # The answerer's encoded page images kept for follow-ups and pages retrieved again
    # (rag.models.page_cache), per loaded answerer; 0 encodes every page every time.
    answer_cache_mb: int = 256
    # Public mode (a shared demo): each browser session gets a private, temporary collection.
    public_max_documents: int = 5
    public_max_pages: int = 50
    public_max_file_mb: int = 20
    # Concurrent requests waiting for the GPU before new ones are turned away.
    max_queue: int = 32
    # Index vectors are searched in bf16: half the memory of fp32, ~6x its speed on CPU.
    index_dtype: Literal["bfloat16", "float32"] = "bfloat16"
    # "local" (the embedded index under data_dir) or a Qdrant location: qdrant://host:port,
    # qdrants://host:port (TLS), qdrant::memory:, qdrant:/path (parse_index).
    index: str = "local"
    qdrant_api_key: str = dataclasses.field(default="", repr=False)  # a secret: never printed
    qdrant_collection: str = ""  # "": one collection per retriever and data dir
    # auto: exact search while the collection has fewer than auto_binary_pages pages, binary
    # above (every index keeps the sign bits: switching needs no re-indexing). exact: full
    # vectors in memory. pooled: pool_factor-times fewer vectors searched, then an exact rerank.
    # binary: 1 bit per dimension searched by Hamming MaxSim, then an exact rerank of the best
    # `rerank` pages from full vectors memory-mapped from disk (fits 100k pages).
    index_mode: IndexMode = "auto"
    # Where auto mode switches: binary + rerank was faster than exact from this many pages on,
    # ColQwen-shaped pages on this 2-core CPU (benchmarks.search; docs/performance.md).
    auto_binary_pages: int = AUTO_BINARY_PAGES
    pool_factor: int = 3
    rerank: int = 200  # 100 left ~2% of top-10s short on pages of unrelated documents
    # binary mode: a first pass on 64 of the 128 bits keeps binary_prefilter x rerank pages for
    # the full Hamming MaxSim (1.4x faster scans of large indexes; it runs only when it keeps at
    # most a quarter of the pages); 0 scans every bit.
    binary_prefilter: int = 20
    # The page's own words join the picture (rag.ingest.text, rag.index.lexical): "rrf" fuses the
    # visual and the lexical rankings by reciprocal rank; "weighted" mixes their scores, each
    # scaled to [0, 1] (hybrid_weight is the words' share); "off": the picture alone; "text":
    # the words alone (to check the text side on its own).
    hybrid: Hybrid = "rrf"
    hybrid_weight: float = 0.3
    # Tesseract languages for pages without a text layer ("eng+deu"; installed packs only).
    # "": every installed pack, English first (the set-up installs English).
    ocr_languages: str = ""
    # What reading a file's words may cost in all (text layer, then OCR of the pages without
    # one), within the file's own time budget: past it, pages are found by their picture.
    text_timeout_s: int = 60
    # Give the answerer each page's text beside its image (helps small VLMs on dense pages).
    answer_with_text: bool = False
    # A second stage over the first stage's best rerank_depth pages (rag.models.rerankers), which
    # then keeps the best top_k by its own score: "off"; "text:MODEL", a cross-encoder reading
    # the page's words (BAAI/bge-reranker-v2-m3); "visual:MODEL", a vision-language model
    # judging the page's picture (lightonai/MonoQwen2-VL-v0.1). `ask --rerank` / `--no-rerank`
    # choose per question. Not `rerank` above: that is binary search's exact second pass.
    reranker: str = "off"
    rerank_depth: int = 20
    # Teams (rag.people, rag.access). Single sign-on: the header a trusted proxy (oauth2-proxy,
    # ...) sets to the signed-in user's name, e.g. X-Forwarded-User; honoured only from
    # trusted_proxies (comma-separated addresses or networks), never from anyone else.
    auth_header: str = ""
    trusted_proxies: str = "127.0.0.1,::1"
    # The audit log (rag.audit): one JSON line per login, upload, delete, retag, visibility
    # change, sync and question; "" is off. Rotated past audit_max_mb, audit_backups kept.
    audit_log: str = ""
    audit_max_mb: int = 10
    audit_backups: int = 5
    # Folders the web app keeps in sync in the background (rag.sync), separated by the path
    # separator (":" on Linux); what they add is readable as sync_visibility says.
    sync: str = ""
    sync_visibility: str = "everyone"
    sync_prune: bool = False  # remove documents whose synced file is gone (else: reported)
    # A file changing is taken once it has been left alone this long (one still being copied
    # waits); a watched folder is also rescanned every sync_rescan_s (missed events, mounts).
    sync_settle_s: float = 2.0
    sync_rescan_s: int = 300

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from RAG_* variables (e.g. RAG_DATA_DIR, RAG_TOP_K), then keyword overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(f"RAG_{field.name.upper()}")
            if raw not in (None, ""):
                values[field.name] = _parse(field.name, raw, field.default)
        values.update({key: value for key, value in overrides.items() if value is not None})
        profile = str(values.get("profile", cls.profile))
        if profile not in PROFILE_NAMES:
            raise ConfigError(f"RAG_PROFILE: unsupported value {profile!r} (auto, cpu or gpu)")
        from rag.profiles import defaults

        remote = str(values.get("generator", "")).startswith(REMOTE_GENERATOR)
        device = str(values.get("device", cls.device))
        chosen, preset = defaults(profile, device, environ, remote)
        return cls(**{**preset, **values, "profile": chosen}).validated()

    def validated(self) -> Settings:
        checks = {
            "device": self.device in ("auto", "cuda", "mps", "cpu"),
            "dtype": self.dtype in ("auto", "float32", "bfloat16", "float16"),
            "index_dtype": self.index_dtype in ("bfloat16", "float32"),
            "index_mode": self.index_mode in ("auto", "exact", "pooled", "binary"),
            "attn_implementation": self.attn_implementation
            in ("auto", "sdpa", "eager", "flash_attention_2", "cpu_bf16"),
            "hybrid": self.hybrid in HYBRID_MODES,
            "profile": self.profile in PROFILE_NAMES,
            "quantize": self.quantize in ("none", "int8"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"RAG_{name.upper()}: unsupported value {getattr(self, name)!r}")
        for name in POSITIVE:
            if getattr(self, name) <= 0:
                raise ConfigError(f"RAG_{name.upper()} must be positive")
        zero_or_more = (
            "batch_size",
            "binary_prefilter",
            "page_workers",
            "answer_cache_mb",
            "generator_retries",
        )
        for name in (*zero_or_more, "answer_rest_max_pixels"):
            if getattr(self, name) < 0:
                raise ConfigError(f"RAG_{name.upper()} must be 0 or positive")
        if self.max_visual_tokens < 0:
            raise ConfigError("RAG_MAX_VISUAL_TOKENS must be 0 (the model's own) or positive")
        parse_index(self.index)  # a bad RAG_INDEX fails here, in one line
        parse_reranker(self.reranker)
        check_generator(self.generator, self.generator_url)
        if not 0 <= self.hybrid_weight <= 1:
            raise ConfigError("RAG_HYBRID_WEIGHT must be between 0 and 1")
        if self.answer_max_pixels < self.answer_min_pixels:
            raise ConfigError("RAG_ANSWER_MAX_PIXELS must be at least RAG_ANSWER_MIN_PIXELS")
        return dataclasses.replace(self, data_dir=Path(self.data_dir))


MAX_PAGE_WORKERS = 8
POSITIVE = (
    "audit_max_mb",
    "sync_settle_s",
    "sync_rescan_s",
    "dpi",
    "max_page_pixels",
    "render_chunk_pages",
    "max_pages",
    "max_file_mb",
    "render_timeout_s",
    "render_memory_mb",
    "render_page_timeout_s",
    "top_k",
    "max_new_tokens",
    "answer_min_pixels",
    "pool_factor",
    "auto_binary_pages",
    "text_timeout_s",
    "rerank_depth",
    "generator_timeout_s",
)
HYBRID_MODES = ("rrf", "weighted", "off", "text")
PROFILE_NAMES = ("auto", "cpu", "gpu")
QDRANT_PORT = 6333
INDEX_FORMS = "local, qdrant://HOST[:PORT], qdrants://HOST[:PORT], qdrant::memory: or qdrant:PATH"


def parse_index(spec: str) -> tuple[str, str | None]:
    """``--index`` / RAG_INDEX as (kind, location): ("local", None) or ("qdrant", LOCATION)
    where LOCATION is an http(s) URL, ":memory:" or a folder.

    >>> parse_index("qdrant://db:6333"), parse_index("qdrants://x.cloud.qdrant.io")
    (('qdrant', 'http://db:6333'), ('qdrant', 'https://x.cloud.qdrant.io:6333'))
    >>> parse_index("qdrant::memory:"), parse_index("qdrant:data/qdrant")
    (('qdrant', ':memory:'), ('qdrant', 'data/qdrant'))
    """
    spec = spec.strip()
    if spec == "local":
        return "local", None
    for scheme, http in (("qdrant://", "http://"), ("qdrants://", "https://")):
        if spec.startswith(scheme):
            host = spec[len(scheme) :].rstrip("/")
            if not host or "/" in host:
                raise ConfigError(f"RAG_INDEX: {spec!r} needs HOST[:PORT] (expected {INDEX_FORMS})")
            if ":" not in host.rsplit("]", 1)[-1]:  # no port (an IPv6 host is in [...])
                host = f"{host}:{QDRANT_PORT}"
            return "qdrant", http + host
    if spec.startswith("qdrant:") and spec != "qdrant:":
        return "qdrant", spec[len("qdrant:") :]  # ":memory:", an http(s) URL or a folder
    raise ConfigError(f"RAG_INDEX: unsupported value {spec!r} (expected {INDEX_FORMS})")


RERANKER_KINDS = ("text", "visual")


def parse_reranker(spec: str) -> tuple[str, str] | None:
    """RAG_RERANKER as (kind, model), None for ``off``; anything else is refused in one line.

    >>> parse_reranker("off"), parse_reranker("text:BAAI/bge-reranker-v2-m3")
    (None, ('text', 'BAAI/bge-reranker-v2-m3'))
    >>> parse_reranker("visual:lightonai/MonoQwen2-VL-v0.1")
    ('visual', 'lightonai/MonoQwen2-VL-v0.1')
    """
    spec = spec.strip()
    if spec == "off":
        return None
    kind, _, model = spec.partition(":")
    if kind not in RERANKER_KINDS or not model.strip():
        raise ConfigError(
            f"RAG_RERANKER: unsupported value {spec!r} (expected off, text:MODEL or visual:MODEL)"
        )
    return kind, model.strip()


def check_generator(generator: str, url: str) -> None:
    """Refuse, in one line, a remote answerer without its server, or a server without one.

    >>> check_generator("openai:qwen2-vl", "http://localhost:8000/v1")
    >>> check_generator("Qwen/Qwen2-VL-2B-Instruct", "")
    """
    if not generator.startswith(REMOTE_GENERATOR):
        if url:
            raise ConfigError(
                f"RAG_GENERATOR_URL is set but RAG_GENERATOR ({generator!r}) is a local model: "
                f"set RAG_GENERATOR={REMOTE_GENERATOR}MODEL to answer on the model server"
            )
        return
    if not generator[len(REMOTE_GENERATOR) :].strip():
        raise ConfigError(f"RAG_GENERATOR: {generator!r} names no model ({REMOTE_GENERATOR}MODEL)")
    if not url:
        raise ConfigError(
            f"RAG_GENERATOR={generator} needs RAG_GENERATOR_URL, the model server's OpenAI API "
            "(e.g. http://localhost:8000/v1)"
        )
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"RAG_GENERATOR_URL: {url!r} is not an http:// or https:// address")


def page_workers(settings: Settings) -> int:
    """``settings.page_workers``, or for 0 half this process's CPU cores, between 1 and
    ``MAX_PAGE_WORKERS``: the other half is for the encoder (on CPU) and the rest of the app."""
    if settings.page_workers:
        return settings.page_workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_PAGE_WORKERS, (cores or 1) // 2))


def _parse(name: str, raw: str, default: object) -> object:
    if isinstance(default, Path):
        return Path(raw).expanduser()
    if isinstance(default, bool):
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ConfigError(f"RAG_{name.upper()} must be 1 or 0 (true or false), got {raw!r}")
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"RAG_{name.upper()} must be a number, got {raw!r}") from None
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"RAG_{name.upper()} must be an integer, got {raw!r}") from None
    return raw
