"""Composition root: parse the command line and environment into Settings, build the
pipeline, run one command.

    python app.py [serve] [--host H] [--port P] [--public]   the web app
    python app.py index PATH... [--json] [--tag T]... [--types pdf,docx] [--as-one NAME]
                                [--visibility V] [--owner USER]
                                                             index PDFs, images, office files
    python app.py ask "QUESTION" [--top-k K] [--json] [--no-answer] [--doc D]... [--tag T]...
    python app.py chat [--top-k K] [--json] [--no-rewrite] [--doc D]... [--tag T]...
                                                             questions and follow-ups on stdin
    python app.py list [--json] [--tag T]...
    python app.py tag DOC [--add T]... [--remove T]...
    python app.py visibility DOC private|everyone|group:G[,group:G...]
    python app.py sync SOURCE... [--tag T]... [--visibility V] [--prune] [--watch] [--json]
                                                             keep folders and the index alike
    python app.py delete DOC                                 DOC: an id or an exact name
    python app.py eval QUESTIONS.jsonl | --vidore FOLDER [--index-corpus] [--modes M,M]
                       [--top-k K] [--answers] [--judge] [--json] [--report DIR]
                                                             measure retrieval and answers
    python app.py user add NAME [--group G]... [--admin]     who may log in (users.json);
    python app.py user passwd NAME                           --password-stdin: the password
                                                             as a line of stdin
    python app.py user groups NAME [--add G]... [--remove G]... [--admin | --no-admin]
    python app.py user list [--json]
    python app.py user remove NAME
    python app.py user key NAME                              a new API key, shown once
    python app.py user revoke NAME KEY_ID

Every command takes --data-dir, --retriever, --generator, --device, --profile (or RAG_*
variables).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from rag import (
    HYBRID_MODES,
    SUPPORTED,
    ConfigError,
    IndexResult,
    Pipeline,
    RagError,
    Settings,
    described,
    display_name,
    supported_list,
)


class UsageError(Exception):
    """The command line asks for something that cannot be done (exit status 1)."""


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors exit 1, as every other error of the CLI does (not 2)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(1, f"error: {message}\n")


def add_common_options(parser: argparse.ArgumentParser, default: object = None) -> None:
    """The options every command takes; sub-commands use default=SUPPRESS so a value given
    before the command name is not overwritten."""
    parser.add_argument(
        "--data-dir", type=Path, default=default, help="index folder (env RAG_DATA_DIR)"
    )
    parser.add_argument("--retriever", default=default, help="hub id or folder (env RAG_RETRIEVER)")
    parser.add_argument("--generator", default=default, help="hub id or folder (env RAG_GENERATOR)")
    parser.add_argument(
        "--device", default=default, choices=["auto", "cuda", "mps", "cpu"], help="env RAG_DEVICE"
    )
    parser.add_argument(
        "--profile",
        default=default,
        choices=["auto", "cpu", "gpu"],
        help="models and page budgets for the machine: auto (default: gpu on a GPU, else cpu), "
        "cpu or gpu (env RAG_PROFILE)",
    )
    parser.add_argument(
        "--index",
        default=default,
        help="local (default), qdrant://HOST[:PORT], qdrants://HOST[:PORT], qdrant::memory: or "
        "qdrant:PATH (env RAG_INDEX; key: RAG_QDRANT_API_KEY)",
    )
    parser.add_argument(
        "--index-mode",
        default=default,
        choices=["auto", "exact", "pooled", "binary"],
        help="how the local index searches pages: auto (default), exact, pooled or binary "
        "(env RAG_INDEX_MODE)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default or False, help="log progress"
    )


def public_default(env: dict[str, str]) -> bool:
    """RAG_PUBLIC as a flag (1/0, true/false, yes/no, on/off: ``RAG_PUBLIC=0`` is off) when set;
    else whether the app runs on a Hugging Face Space (SPACE_ID), as `python app.py`: public.

    >>> public_default({"RAG_PUBLIC": "0", "SPACE_ID": "me/app"}), public_default({"SPACE_ID": "x"})
    (False, True)
    >>> public_default({"RAG_PUBLIC": "yes"}), public_default({})
    (True, False)
    """
    chosen = flag(env.get("RAG_PUBLIC"))
    return bool(env.get("SPACE_ID")) if chosen is None else chosen


def add_serve_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """serve's options; defaults come from the environment (under `serve`, SUPPRESS keeps a
    value given before the command name)."""
    env = os.environ
    port = env.get("RAG_PORT") or env.get("GRADIO_SERVER_PORT") or "7860"
    defaults = {
        "host": env.get("RAG_HOST") or env.get("GRADIO_SERVER_NAME") or "127.0.0.1",
        "port": int(port),
        "public": public_default(env),
        "auth": env.get("RAG_AUTH"),
        "mcp": flag(env.get("RAG_MCP")),
    }
    if suppress:
        defaults = dict.fromkeys(defaults, argparse.SUPPRESS)
    parser.add_argument("--host", default=defaults["host"], help="env RAG_HOST")
    parser.add_argument("--port", type=int, default=defaults["port"], help="env RAG_PORT")
    parser.add_argument(
        "--public",
        action="store_true",
        default=defaults["public"],
        help="each browser session gets a private, temporary collection (env RAG_PUBLIC)",
    )
    parser.add_argument(
        "--auth",
        default=defaults["auth"],
        help="user:pass[,user2:pass2] login (env RAG_AUTH); deprecated: add people with "
        "`app.py user add` (their logins, groups and API keys)",
    )
    parser.add_argument(
        "--mcp",
        action=argparse.BooleanOptionalAction,
        default=defaults["mcp"],
        help="serve the MCP tools at /gradio_api/mcp (env RAG_MCP; default: on in library mode "
        "when gradio[mcp] is installed)",
    )


def flag(value: str | None) -> bool | None:
    """An on/off variable: None when unset or blank.

    >>> flag("0"), flag("yes"), flag("")
    (False, True, None)
    """
    raw = (value or "").strip().lower()
    return raw in ("1", "true", "yes", "on") if raw else None


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="app.py", description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    add_serve_options(parser)  # `python app.py` alone serves, so it takes serve's options too
    sub_common = Parser(add_help=False)
    add_common_options(sub_common, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", parents=[sub_common], help="start the web app")
    add_serve_options(serve, suppress=True)

    index = commands.add_parser(
        "index", parents=[sub_common], help="index documents (PDFs, images, office files)"
    )
    index.add_argument("paths", nargs="+", type=Path, help="files and folders (recursively)")
    index.add_argument(
        "--types",
        type=_types,
        default=SUPPORTED,
        help=f"only these extensions in folders, comma-separated (default: {supported_list()})",
    )
    index.add_argument(
        "--as-one",
        metavar="NAME",
        help="the images found make one document NAME, a page each, in name order",
    )
    index.add_argument("--json", action="store_true", help="one JSON object per line")
    index.add_argument(
        "--password",
        default=os.environ.get("RAG_PDF_PASSWORD") or None,
        help="user password of encrypted PDFs (env RAG_PDF_PASSWORD)",
    )
    index.add_argument("--tag", action="append", default=[], help="tag every file (repeatable)")
    add_access_options(index)

    ask = commands.add_parser("ask", parents=[sub_common], help="ask a question")
    ask.add_argument("question")
    add_question_options(ask)
    ask.add_argument("--no-answer", action="store_true", help="retrieve pages only")
    ask.add_argument(
        "--evidence",
        action="store_true",
        help="with --json: each page's evidence boxes (a heatmap pass per page)",
    )

    chat = commands.add_parser(
        "chat",
        parents=[sub_common],
        help="a conversation: one question per line on stdin, follow-ups understood in context",
    )
    add_question_options(chat)
    chat.add_argument(
        "--no-rewrite",
        action="store_true",
        help="search each line as it is, not as a standalone question written from the history",
    )

    listing = commands.add_parser("list", parents=[sub_common], help="list indexed documents")
    listing.add_argument("--json", action="store_true")
    listing.add_argument(
        "--tag", action="append", default=[], help="only documents tagged T (repeatable: any)"
    )

    tag = commands.add_parser("tag", parents=[sub_common], help="add or remove a document's tags")
    tag.add_argument("doc", help="document id or exact name")
    tag.add_argument("--add", action="append", default=[], help="tag to add (repeatable)")
    tag.add_argument("--remove", action="append", default=[], help="tag to remove (repeatable)")

    visibility = commands.add_parser(
        "visibility", parents=[sub_common], help="change who may read a document"
    )
    visibility.add_argument("doc", help="document id or exact name")
    visibility.add_argument("visibility", help=VISIBILITY_HELP)

    add_sync_parser(commands, sub_common)
    add_eval_parser(commands, sub_common)

    commands.add_parser("delete", parents=[sub_common], help="delete a document").add_argument(
        "doc", help="document id or exact name"
    )

    user = commands.add_parser(
        "user", parents=[sub_common], help="the people who may log in (<data-dir>/users.json)"
    )
    actions = user.add_subparsers(dest="action", required=True)
    for action, helped in [
        ("add", "add a person"),
        ("passwd", "set a person's password"),
        ("remove", "remove a person and their API keys"),
        ("groups", "join or leave groups; make or unmake an admin"),
        ("key", "make an API key (shown once)"),
        ("revoke", "revoke an API key"),
    ]:
        actions.add_parser(action, parents=[sub_common], help=helped).add_argument(
            "name", help="1-64 letters, digits, '.', '_', '-' or '@' (an e-mail address fits)"
        )
    add, passwd, groups, revoke = map(actions.choices.get, ["add", "passwd", "groups", "revoke"])
    add.add_argument("--group", action="append", default=[], help="group to join (repeatable)")
    add.add_argument("--admin", action="store_true", help="reads and changes every document")
    for asks_password in (add, passwd):
        asks_password.add_argument(
            "--password-stdin", action="store_true", help="read the password as a line of stdin"
        )
    groups.add_argument("--add", action="append", default=[], help="group to join (repeatable)")
    groups.add_argument("--remove", action="append", default=[], help="group to leave")
    groups.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None)
    revoke.add_argument("key_id", help="the key's id, as `user list` shows it")
    people = actions.add_parser("list", parents=[sub_common], help="list the people")
    people.add_argument("--json", action="store_true", help="one JSON object per person")
    return parser


def add_sync_parser(commands, common: argparse.ArgumentParser) -> None:
    syncing = commands.add_parser(
        "sync",
        parents=[common],
        help="bring the index in line with folders: add new files, replace changed ones",
    )
    syncing.add_argument("sources", nargs="+", type=Path, help="folders (recursively) or files")
    syncing.add_argument(
        "--tag", action="append", default=[], help="tag every file added (repeatable)"
    )
    syncing.add_argument(
        "--visibility",
        default="everyone",
        help=f"who may read the documents added: {VISIBILITY_HELP} (default everyone; a new "
        "version keeps its document's)",
    )
    syncing.add_argument(
        "--prune", action="store_true", help="delete the documents whose file is gone"
    )
    syncing.add_argument(
        "--watch", action="store_true", help="keep following the folders (Ctrl-C stops)"
    )
    syncing.add_argument("--json", action="store_true", help="one JSON object per line")


def add_eval_parser(commands, common: argparse.ArgumentParser) -> None:
    evaluating = commands.add_parser(
        "eval",
        parents=[common],
        help="measure retrieval (recall, MRR, nDCG) and answers per fusion mode "
        "(docs/evaluation.md)",
    )
    evaluating.add_argument(
        "questions", nargs="?", type=Path, help="a JSON Lines questions file (docs/evaluation.md)"
    )
    evaluating.add_argument(
        "--vidore", type=Path, metavar="FOLDER", help="a local ViDoRe V3 dataset folder instead"
    )
    evaluating.add_argument(
        "--index-corpus",
        action="store_true",
        help="with --vidore: index the dataset's page images first (skips those indexed)",
    )
    evaluating.add_argument(
        "--language",
        default="english",
        help="with --vidore: the queries' language, or all (default english)",
    )
    evaluating.add_argument(
        "--modes",
        type=_modes,
        default=["off", "text", "rrf", "weighted"],
        help="fusion modes to compare, comma-separated (default off,text,rrf,weighted)",
    )
    evaluating.add_argument(
        "--top-k", type=positive_int, default=10, help="pages retrieved per question (default 10)"
    )
    evaluating.add_argument(
        "--answers", action="store_true", help="also write answers and score them (EM, F1)"
    )
    evaluating.add_argument(
        "--judge", action="store_true", help="also ask the answerer to judge each answer"
    )
    evaluating.add_argument("--json", action="store_true", help="print one JSON object")
    evaluating.add_argument(
        "--report", type=Path, metavar="DIR", help="write DIR/report.md and DIR/metrics.png"
    )


def _modes(value: str) -> list[str]:
    modes = [mode.strip() for mode in value.split(",") if mode.strip()]
    unknown = [mode for mode in modes if mode not in HYBRID_MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(
            f"{', '.join(unknown) or 'no mode'}: choose from {', '.join(HYBRID_MODES)}"
        )
    return modes


def add_question_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--top-k", type=positive_int, default=None, help="pages to retrieve (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per answer")
    parser.add_argument(
        "--hybrid",
        choices=list(HYBRID_MODES),
        default=None,
        help="how the pages' pictures and words are combined: rrf (default), weighted, off "
        "(pictures only), text (words only) (env RAG_HYBRID)",
    )
    parser.add_argument(
        "--rerank",
        action=argparse.BooleanOptionalAction,
        default=None,
        dest="reranking",  # not RAG_RERANK (binary search's exact pass)
        help="reorder the best pages with the reranker (env RAG_RERANKER; default: when it is set)",
    )
    add_scope_options(parser)


VISIBILITY_HELP = "private, everyone, or group:NAME[,group:NAME...]"


def add_access_options(parser: argparse.ArgumentParser) -> None:
    """Whose new documents are and who may read them (the CLI itself acts as an admin)."""
    parser.add_argument(
        "--visibility",
        default="everyone",
        help=f"who may read the documents: {VISIBILITY_HELP} (default everyone)",
    )
    parser.add_argument(
        "--owner", default=None, help="a user (app.py user list) whose documents they are"
    )


def acting_owner(pipeline: Pipeline, owner: str | None) -> Pipeline:
    """The pipeline acting for ``owner`` (a user of the store), or as it is (an admin)."""
    if owner is None:
        return pipeline
    person = pipeline.people.get(owner)
    if person is None:
        raise RagError(f"no user is named {owner!r} (app.py user list)")
    return pipeline.acting_for(person)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def add_scope_options(parser: argparse.ArgumentParser) -> None:
    """Where a question searches: documents and tags, all of them together (none: everything)."""
    parser.add_argument(
        "--doc", action="append", default=[], help="search within this document (id or name)"
    )
    parser.add_argument(
        "--tag", action="append", default=[], help="search within documents tagged T"
    )


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        data_dir=args.data_dir,
        retriever=args.retriever,
        generator=args.generator,
        device=args.device,
        profile=args.profile,
        index=args.index,
        index_mode=args.index_mode,
    )


def run_index(pipeline: Pipeline, args: argparse.Namespace) -> int:
    from rag import PageRate

    missing = [str(path) for path in args.paths if not path.exists()]
    if missing:  # a typo is the caller's error, not a bad file: nothing is indexed
        raise UsageError(f"no such file or folder: {', '.join(missing)} (nothing was indexed)")

    rates: dict[str, PageRate] = {}

    def progress(done: int, total: int, name: str) -> None:
        rate = rates.setdefault(name, PageRate())
        if done and not args.json:
            print(f"  {name}: {rate.describe(done, total)}", file=sys.stderr)

    results = acting_owner(pipeline, args.owner).add_paths(
        args.paths,
        progress=progress,
        password=args.password,
        ignored=report_ignored,
        tags=args.tag,
        types=args.types,
        as_one=args.as_one,
        visibility=args.visibility,
    )
    for result in results:
        print(_index_json(result) if args.json else result.message, flush=True)
    return 0


def report_ignored(folder: Path, files: list[Path], shown: int = 5) -> None:
    """One line on stderr (stdout stays one result per file) naming a folder's files of other
    types."""
    names = ", ".join(display_name(file.name) for file in files[:shown])
    more = f" and {len(files) - shown} more" if len(files) > shown else ""
    print(f"{folder}: not of the types indexed, skipped: {names}{more}", file=sys.stderr)


def _types(value: str) -> tuple[str, ...]:
    try:
        return described(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_ask(pipeline: Pipeline, args: argparse.Namespace) -> int:
    answer = pipeline.ask(
        args.question,
        args.top_k,
        docs=args.doc,
        tags=args.tag,
        hybrid=args.hybrid,
        rerank=args.reranking,
    )
    if args.json:
        text = None if args.no_answer else answer.text()
        print(json.dumps(answer_json(answer, text, evidence=args.evidence)))
        return 0
    print_answer(answer, stream=not args.no_answer)
    return 0


def run_chat(pipeline: Pipeline, args: argparse.Namespace) -> int:
    """Answer each line of stdin in turn, each with the turns before it as its history."""
    from rag import Turn

    pipeline.scope(args.doc, args.tag)  # an unknown document or tag: refused before any line
    history: list[Turn] = []
    for line in sys.stdin:
        question = line.strip()
        if not question:
            continue
        answer = pipeline.ask(
            question,
            args.top_k,
            args.doc,
            args.tag,
            history=history,
            rewrite=not args.no_rewrite,
            hybrid=args.hybrid,
            rerank=args.reranking,
        )
        if args.json:
            text = answer.text()
            print(json.dumps(answer_json(answer, text)), flush=True)
        else:
            text = print_answer(answer, stream=True)
            print(flush=True)
        history.append(Turn(question, text))
    return 0


def answer_json(answer, text: str | None, evidence: bool = False) -> dict:
    hits = [
        {"doc_id": h.doc_id, "name": h.name, "page": h.page_number, "score": round(h.score, 4)}
        | {"visual_score": rounded(h.visual_score), "text_score": rounded(h.text_score)}
        | {"rerank_score": rounded(h.rerank_score)}
        | ({"evidence": [e.as_json() for e in answer.evidence(h)]} if evidence else {})
        for h in answer.hits
    ]
    return {"question": answer.question, "searched": answer.searched, "answer": text, "hits": hits}


def rounded(score: float | None) -> float | None:
    return None if score is None else round(score, 4)


def print_answer(answer, stream: bool) -> str:
    """Print the streamed answer (if ``stream``) and its sources; returns the answer text."""
    if answer.rewritten:
        print(f"(searched for: {answer.searched})")
    text = ""
    if stream:
        for piece in answer.stream():
            text += piece
            print(piece, end="", flush=True)
        print()
    print("Sources:")
    for hit in answer.hits:
        print(f"  {hit.citation}  score {hit.score:.3f}{sides(hit)}  id {hit.doc_id}")
    return text


def sides(hit) -> str:
    """Each ranking's own score of a fused hit: `` (picture 12.301, words 4.210)``."""
    parts = [f"{side} {score:.3f}" for side, score in hit.sides.items()]
    return f" ({', '.join(parts)})" if parts else ""


def run_list(pipeline: Pipeline, args: argparse.Namespace) -> int:
    for doc in pipeline.documents(tags=args.tag):
        record = {
            "doc_id": doc.doc_id,
            "name": doc.name,
            "pages": doc.pages,
            "added": doc.added,
            "tags": list(doc.tags),
            "owner": doc.owner,
            "visibility": doc.visibility,
            "source": doc.source,
        }
        tags = f"  [{', '.join(doc.tags)}]" if doc.tags else ""
        whose = f"  ({doc.owner or 'no owner'}; {doc.visibility})"
        line = f"{doc.doc_id}  {doc.pages:4d} pages  {doc.added}  {doc.name}{tags}{whose}"
        print(json.dumps(record) if args.json else line)
    return 0


def run_visibility(pipeline: Pipeline, args: argparse.Namespace) -> int:
    document = pipeline.share(args.doc, args.visibility)
    print(f"{document.name} ({document.doc_id}): readable by {document.visibility}")
    return 0


def run_tag(pipeline: Pipeline, args: argparse.Namespace) -> int:
    if not args.add and not args.remove:
        raise RagError("say which tags to --add or --remove")
    document = pipeline.tag(args.doc, add=args.add, remove=args.remove)
    print(f"{document.name} ({document.doc_id}): tags: {', '.join(document.tags) or 'none'}")
    return 0


def run_delete(pipeline: Pipeline, args: argparse.Namespace) -> int:
    document = pipeline.delete(args.doc)
    print(f"deleted {document.name} ({document.doc_id})")
    return 0


def run_sync(pipeline: Pipeline, args: argparse.Namespace) -> int:
    """One line (or JSON object) per file added, replaced, moved, removed, refused, still
    changing or missing, as it happens, then the run's summary; with --watch, the same for
    every run until Ctrl-C, which stops once the run under way has said its summary."""
    import signal
    import threading

    from rag import sync_folders as sync
    from rag import watch_folders as watch

    def changed(change) -> None:
        fields = ("action", "path", "name", "doc_id", "detail")
        record = {name: getattr(change, name) for name in fields}
        print(json.dumps(record) if args.json else change.message, flush=True)

    def reported(report) -> None:
        counts = ("added", "replaced", "removed", "unchanged", "refused", "waiting", "ignored")
        record = {"summary": report.summary} | {n: getattr(report, n) for n in counts}
        record["missing"] = [
            {"path": c.path, "name": c.name, "doc_id": c.doc_id} for c in report.missing
        ]
        print(json.dumps(record) if args.json else report.summary, flush=True)

    options = {"tags": args.tag, "visibility": args.visibility, "prune": args.prune}
    if not args.watch:
        reported(sync(pipeline, args.sources, progress=changed, **options))
        return 0
    stop = threading.Event()

    def interrupted(signum, frame) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: at once
        print("stopping after the sync under way (Ctrl-C again: now)", file=sys.stderr)

    signal.signal(signal.SIGINT, interrupted)
    print(f"following {', '.join(map(str, args.sources))} (Ctrl-C stops)", file=sys.stderr)
    watch(
        pipeline,
        args.sources,
        stop=stop,
        on_report=reported,
        on_error=lambda error: print(f"error: {error}", file=sys.stderr, flush=True),
        progress=changed,
        **options,
    )
    return 0


def run_eval(pipeline: Pipeline, args: argparse.Namespace) -> int:
    """Evaluate a questions file or a ViDoRe folder: skipped lines and progress on stderr, the
    table (or one JSON object) on stdout, the report in --report DIR."""
    from rag import EvalOptions, evaluate_questions, evaluate_vidore

    if (args.questions is None) == (args.vidore is None):
        raise UsageError("give either a questions file or --vidore FOLDER")
    if args.index_corpus and args.vidore is None:
        raise UsageError("--index-corpus goes with --vidore FOLDER")
    if args.questions is not None and not args.questions.is_file():
        raise UsageError(f"no such file: {args.questions}")

    def said(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def progress(configuration, done: int, total: int) -> None:
        if done == total and not args.json:
            said(f"{configuration.name}: {total} questions")

    options = EvalOptions(args.top_k, args.answers or args.judge, args.judge)
    heard = {"said": said, "progress": progress}
    if args.vidore is not None:
        evaluation = evaluate_vidore(
            pipeline, args.vidore, args.modes, options,
            language=args.language, index_corpus=args.index_corpus, **heard,
        )  # fmt: skip
    else:
        evaluation = evaluate_questions(pipeline, args.questions, args.modes, options, **heard)
    if args.report is not None:
        said(f"report: {evaluation.write_report(args.report)}")
    print(json.dumps(evaluation.json()) if args.json else evaluation.table())
    return 0


def run_serve(pipeline: Pipeline, args: argparse.Namespace) -> int:
    from ui.app import build_demo, parse_auth
    from ui.gate import is_loopback, parse_keys
    from ui.login import DEPRECATED, Login
    from ui.serving import mcp_available, surfaces

    try:
        auth = parse_auth(args.auth)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    settings = pipeline.settings
    if args.public and (auth or settings.auth_header or pipeline.people):
        raise ConfigError(
            "logins (--auth, RAG_AUTH_HEADER, users in users.json) are for library mode; "
            "public mode has no shared collection"
        )
    if args.mcp and args.public:
        raise ConfigError("--mcp is for library mode; public mode has no shared collection")
    if args.mcp and not mcp_available():
        raise ConfigError('--mcp needs Gradio\'s MCP extra: pip install "gradio[mcp]==6.31.0"')
    if auth:
        logging.getLogger("app").warning("%s", DEPRECATED)
    login = Login.configure(settings, pipeline.people, auth, pipeline.audit.record)
    syncer = start_sync(pipeline) if not args.public else None
    status = (lambda: syncer.status().line) if syncer is not None else None
    web = build_demo(pipeline, public=args.public, login=login, sync_status=status)
    served = {}
    if not args.public:  # /v1 and MCP serve the library; public mode has none to offer
        served = surfaces(
            web.demo,
            pipeline,
            mcp=mcp_available() if args.mcp is None else args.mcp,
            keys=parse_keys(os.environ.get("RAG_API_KEYS")),
            keys_required=login.enabled or not is_loopback(args.host),
            web_caller=web.caller,
            files=web.collections.files,
        )
    pipeline.warm(search=not args.public)  # public sessions open their own indexes later
    # Oversized uploads are cut off by the server before they reach the disk.
    max_mb = settings.public_max_file_mb if args.public else settings.max_file_mb
    try:
        web.launch(
            server_name=args.host,
            server_port=args.port,
            show_error=True,
            max_file_size=f"{max_mb}mb",
            **served,
        )
    finally:
        if syncer is not None:
            syncer.stop(timeout=10)
    return 0


def start_sync(pipeline: Pipeline):
    """The folders of RAG_SYNC kept in sync in the background, acting as an admin (None:
    there are none)."""
    if not pipeline.settings.sync:
        return None
    from rag import Syncer

    syncer = Syncer(pipeline)
    syncer.start()
    return syncer


def run_user(pipeline: Pipeline, args: argparse.Namespace) -> int:
    """Manage <data-dir>/users.json; neither models nor the index are touched."""
    import getpass

    from rag import People

    people = People(pipeline.settings.data_dir / "users.json")

    def password() -> str:
        if args.password_stdin:
            return sys.stdin.readline().rstrip("\r\n")
        if not sys.stdin.isatty():
            raise UsageError("no terminal to ask the password on: give it with --password-stdin")
        typed = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != typed:
            raise UsageError("the two passwords differ; nothing was changed")
        return typed

    def describe(caller, keys: int) -> str:
        groups = ", ".join(sorted(caller.groups)) or "none"
        return f"{caller.name}  groups: {groups}{'  admin' if caller.admin else ''}  keys: {keys}"

    if args.action == "add":
        caller = people.add(args.name, password(), args.group, args.admin)
        print(f"added {describe(caller, 0)}")
    elif args.action == "passwd":
        people.set_password(args.name, password())
        print(f"changed the password of {args.name}")
    elif args.action == "remove":
        keys = len(people.keys(args.name))
        print(f"removed {describe(people.remove(args.name), keys)} (keys revoked)")
    elif args.action == "groups":
        caller = people.change(args.name, args.add, args.remove, args.admin)
        print(describe(caller, len(people.keys(args.name))))
    elif args.action == "key":
        key = people.new_key(args.name)
        print(f"a new API key for {args.name}, shown this once: store it now", file=sys.stderr)
        print(key)
    elif args.action == "revoke":
        people.revoke_key(args.name, args.key_id)
        print(f"revoked the API key {args.key_id} of {args.name}")
    else:  # list
        for caller in people.list():
            keys = people.keys(caller.name)
            record = {"name": caller.name, "groups": sorted(caller.groups)}
            record |= {"admin": caller.admin, "keys": [key.id for key in keys]}
            print(json.dumps(record) if args.json else describe(caller, len(keys)))
    return 0


COMMANDS = {
    "serve": run_serve,
    "index": run_index,
    "ask": run_ask,
    "chat": run_chat,
    "list": run_list,
    "tag": run_tag,
    "visibility": run_visibility,
    "sync": run_sync,
    "delete": run_delete,
    "eval": run_eval,
    "user": run_user,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:  # model-loading progress bars would bury the command's output
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        pipeline = Pipeline(settings_from(args))
        return COMMANDS[args.command or "serve"](pipeline, args)
    except (RagError, UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _index_json(result: IndexResult) -> str:
    fields = ("file", "status", "doc_id", "pages", "error")
    record = {name: getattr(result, name) for name in fields}
    return json.dumps({**record, "warnings": list(result.warnings)})


if __name__ == "__main__":
    sys.exit(main())
