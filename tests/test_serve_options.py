"""The server's own settings, read by app.py from the environment: RAG_PUBLIC is a flag."""

from __future__ import annotations

import pytest

import app


@pytest.mark.parametrize(
    ("env", "public"),
    [
        ({"RAG_PUBLIC": "1"}, True),
        ({"RAG_PUBLIC": "true"}, True),
        ({"RAG_PUBLIC": "0"}, False),  # once read as on: any non-empty value was
        ({"RAG_PUBLIC": "off", "SPACE_ID": "team/app"}, False),  # said outright, it wins
        ({"SPACE_ID": "team/app"}, True),  # a Space runs `python app.py`: public
        ({}, False),
    ],
)
def test_rag_public_is_a_flag_and_a_space_is_public_unless_told(env, public, monkeypatch):
    for name in ("RAG_PUBLIC", "SPACE_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert app.public_default(env) is public
    assert app.build_parser().parse_args(["serve"]).public is public
