"""A conversation about the documents: earlier turns, and the standalone question a follow-up
becomes before retrieval.

A follow-up such as "and in 2023?" finds nothing by itself: the answerer first rewrites it,
from the conversation so far, into a question that stands alone, and that is what the
retriever searches. The answer is then written from the new pages with the earlier turns in
the prompt, so "it" and "that year" keep their meaning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Earlier turns shown to the answerer: the latest few, each answer cut to this many characters
# (the pages of earlier turns are not sent again, so a turn costs only its text).
HISTORY_TURNS = 6
ANSWER_CHARS = 1500
# A standalone question is one line; a model that rambles on is cut here.
QUESTION_CHARS = 300

REWRITE = (
    "Below is a conversation about some documents, then a follow-up question. Rewrite the "
    "follow-up as one question that can be understood without the conversation: replace "
    "words such as 'it', 'they' or 'that year' by what they refer to. Reply with the "
    "question only.\n\n{conversation}\n\nFollow-up: {question}\nStandalone question:"
)


@dataclass(frozen=True)
class Turn:
    """One earlier exchange: what the user asked and what the answerer replied."""

    question: str
    answer: str


def recent(history: Iterable[Turn]) -> tuple[Turn, ...]:
    """The turns the answerer sees: the last ``HISTORY_TURNS``, each answer shortened, turns
    with an empty question dropped."""
    kept = [t for t in history if t.question.strip()][-HISTORY_TURNS:]
    return tuple(Turn(t.question.strip(), shorten(t.answer, ANSWER_CHARS)) for t in kept)


def from_messages(messages: Sequence[dict]) -> tuple[Turn, ...]:
    """Turns from chat messages (``{"role": "user" | "assistant", "content": str}``, as Gradio's
    Chatbot and OpenAI-style clients hold them): each user message paired with the assistant
    reply after it (an unanswered question pairs with ""). Notes with a ``metadata`` title
    (the app's "searched for" lines, a model's thoughts) are not replies.

    >>> from_messages([{"role": "user", "content": "Revenue?"},
    ...                {"role": "assistant", "content": "12 M€ [r.pdf p.2]"}])
    (Turn(question='Revenue?', answer='12 M€ [r.pdf p.2]'),)
    """
    turns: list[Turn] = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if not isinstance(content, str):  # files and components carry no words
            continue
        if (message.get("metadata") or {}).get("title"):
            continue
        if role == "user":
            turns.append(Turn(content, ""))
        elif role == "assistant" and turns and not turns[-1].answer:
            turns[-1] = Turn(turns[-1].question, content)
    return tuple(turns)


def rewrite_prompt(question: str, history: Sequence[Turn]) -> str:
    """The instruction that asks the answerer for ``question`` as a standalone question."""
    lines = []
    for turn in history:
        lines.append(f"User: {turn.question}")
        if turn.answer:
            lines.append(f"Assistant: {turn.answer}")
    return REWRITE.format(conversation="\n".join(lines), question=question.strip())


_REWRITE_HEAD, _, _REWRITE_TAIL = REWRITE.partition("{conversation}")
_SPEAKER = re.compile(r"^(User|Assistant): ", re.MULTILINE)


def rewrite_request(prompt: str) -> tuple[str, tuple[Turn, ...]] | None:
    """The question and conversation a ``rewrite_prompt`` was written from (what a server
    answering this app's remote answerer reads back); None for any other text.

    >>> turns = [Turn("Revenue in 2024?", " 3 M€\\n"), Turn("Costs?", "")]
    >>> rewrite_request(rewrite_prompt("and in 2023?", turns)) == ("and in 2023?", tuple(turns))
    True
    """
    ending = _REWRITE_TAIL.partition("{question}")
    if not (prompt.startswith(_REWRITE_HEAD) and prompt.endswith(ending[2])):
        return None
    body = prompt[len(_REWRITE_HEAD) : len(prompt) - len(ending[2])]
    conversation, found, question = body.rpartition(ending[0])
    if not found:
        return None
    turns: list[Turn] = []
    parts = _SPEAKER.split(conversation)  # ["", "User", text, "Assistant", text, ...]
    texts = [text.removesuffix("\n") for text in parts[2:-1:2]] + parts[-1:]  # the joins
    for speaker, text in zip(parts[1::2], texts, strict=True):
        if speaker == "User":
            turns.append(Turn(text, ""))
        elif turns:
            turns[-1] = Turn(turns[-1].question, text)
    return question, tuple(turns)


def standalone(reply: str, question: str) -> str:
    """The answerer's ``reply`` to the rewrite prompt as a search query: its first non-empty
    line, without a leading label or quotes, at most ``QUESTION_CHARS`` long; ``question``
    itself when nothing usable is left.

    >>> standalone('Standalone question: "What was the revenue in 2023?"\\nBecause', "and 2023?")
    'What was the revenue in 2023?'
    >>> standalone("  \\n", "and in 2023?")
    'and in 2023?'
    """
    line = next((s.strip() for s in reply.splitlines() if s.strip()), "")
    line = re.sub(r"^(standalone question|question)\s*:\s*", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("\"'“”«»`").strip()
    return shorten(line, QUESTION_CHARS) if re.search(r"\w", line) else question.strip()


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary where there is one.

    >>> shorten("one two three", 9)
    'one two…'
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"
