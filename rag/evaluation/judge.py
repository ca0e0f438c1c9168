"""The judge: the configured answerer asked whether an answer agrees with the reference.

The answerer reads pages, so the judge is shown the best retrieved page with the question, the
reference and the answer, and asked for one word, yes or no. Its score is noisy, the more so
the smaller the model: with the tiny test models it is random. A reply that is neither yes nor
no scores None (left out of the mean) and is kept in the per-question results.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.models.answerer import PageImage
from rag.models.loaded import Models

JUDGE_TOKENS = 4  # "yes" or "no", and room for a trailing full stop

PROMPT = (
    "You are grading an answer to a question about documents.\n"
    "Question: {question}\n"
    "Reference answer: {reference}\n"
    "Proposed answer: {answer}\n"
    "Does the proposed answer say what the reference answer says? Reply with one word: yes or no."
)


def judge_prompt(question: str, references: Sequence[str], answer: str) -> str:
    """The judge's instruction (several references are given as alternatives).

    >>> print(judge_prompt("Who?", ["Ann", "Anna"], "Ann").splitlines()[2])
    Reference answer: Ann (or: Anna)
    """
    reference = " (or: ".join(references) + ")" * (len(references) - 1)
    return PROMPT.format(question=question, reference=reference, answer=answer or "(none)")


def verdict(reply: str) -> float | None:
    """1.0 for a reply starting with yes, 0.0 for no, None for anything else.

    >>> verdict("Yes."), verdict(" no, it is not"), verdict("maybe")
    (1.0, 0.0, None)
    """
    words = reply.strip().lower().split()
    first = words[0].strip(".,!:;\"'") if words else ""
    return {"yes": 1.0, "no": 0.0}.get(first)


def judge(
    models: Models,
    question: str,
    references: Sequence[str],
    answer: str,
    pages: list[PageImage],
) -> tuple[float | None, str]:
    """The judge's verdict on ``answer`` and its raw reply, shown the first of ``pages``."""
    prompt = judge_prompt(question, references, answer)
    answerer = models.answerer
    with models.answering():
        reply = answerer.answer(prompt, pages[:1], JUDGE_TOKENS)
    return verdict(reply), reply
