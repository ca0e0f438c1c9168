"""RAG_PROFILE: the machine's profile supplies models and page budgets; every setting still
overrides it."""

from __future__ import annotations

import pytest
import torch

from rag.config import DEFAULT_GENERATOR, DEFAULT_RETRIEVER, Settings
from rag.errors import ConfigError
from rag.profiles import PROFILES


def test_the_cpu_profile_sets_small_models_and_small_pages():
    settings = Settings.from_env({"RAG_PROFILE": "cpu"})
    assert settings.profile == "cpu"
    assert settings.retriever == PROFILES["cpu"]["retriever"] != DEFAULT_RETRIEVER
    assert settings.generator == PROFILES["cpu"]["generator"] != DEFAULT_GENERATOR
    assert settings.max_visual_tokens == PROFILES["cpu"]["max_visual_tokens"] > 0
    assert settings.answer_max_pixels == PROFILES["cpu"]["answer_max_pixels"]


def test_the_gpu_profile_is_the_defaults():
    settings = Settings.from_env({"RAG_PROFILE": "gpu"})
    assert (settings.profile, settings.retriever, settings.generator) == (
        "gpu",
        DEFAULT_RETRIEVER,
        DEFAULT_GENERATOR,
    )
    assert settings.max_visual_tokens == Settings().max_visual_tokens


@pytest.mark.parametrize(("device", "profile"), [("cpu", "cpu"), ("cuda", "gpu"), ("mps", "gpu")])
def test_auto_follows_the_device_setting(device, profile):
    assert Settings.from_env({"RAG_DEVICE": device}).profile == profile


def test_auto_finds_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert Settings.from_env({}).profile == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert Settings.from_env({}).profile == "gpu"


def test_every_setting_overrides_the_profile():
    environ = {"RAG_PROFILE": "cpu", "RAG_GENERATOR": "my/answerer", "RAG_MAX_VISUAL_TOKENS": "0"}
    settings = Settings.from_env(environ, retriever="my/retriever")
    assert (settings.retriever, settings.generator) == ("my/retriever", "my/answerer")
    assert settings.max_visual_tokens == 0  # the checkpoint's own budget, as asked
    assert settings.answer_max_pixels == PROFILES["cpu"]["answer_max_pixels"]  # still the profile's
    assert Settings.from_env({}, profile="gpu", device="cpu").retriever == DEFAULT_RETRIEVER


def test_an_unknown_profile_is_one_clear_line():
    with pytest.raises(ConfigError, match=r"^RAG_PROFILE: unsupported value 'laptop'"):
        Settings.from_env({"RAG_PROFILE": "laptop"})
