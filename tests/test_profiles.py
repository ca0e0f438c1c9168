"""RAG_PROFILE: the machine's profile supplies models and page budgets; every setting still
overrides it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from devtools.tiny_models import GENERATORS, RETRIEVERS
from rag.config import DEFAULT_GENERATOR, DEFAULT_RETRIEVER, Settings
from rag.errors import ConfigError
from rag.profiles import PROFILES
from tests.helpers.tiers import families


def test_the_cpu_profile_sets_small_models_and_small_pages():
    settings = Settings.from_env({"RAG_PROFILE": "cpu"})
    assert settings.profile == "cpu"
    assert settings.retriever == PROFILES["cpu"]["retriever"] != DEFAULT_RETRIEVER
    assert settings.generator == PROFILES["cpu"]["generator"] != DEFAULT_GENERATOR
    assert settings.max_visual_tokens == PROFILES["cpu"]["max_visual_tokens"] > 0
    assert settings.answer_max_pixels == PROFILES["cpu"]["answer_max_pixels"]
    assert settings.answer_rest_max_pixels < settings.answer_max_pixels
    assert settings.quantize == "int8"


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


def test_a_zerogpu_space_gets_the_gpu_profile(monkeypatch):
    """ZeroGPU lends its GPU per request: at start no CUDA device may be visible yet."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert Settings.from_env({"SPACES_ZERO_GPU": "true"}).profile == "gpu"
    assert Settings.from_env({"SPACES_ZERO_GPU": "true", "RAG_PROFILE": "cpu"}).profile == "cpu"


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


@pytest.mark.models
def test_int8_models_stay_close_to_float_and_the_answer_still_streams(tiny_models):
    """RAG_QUANTIZE=int8: linear layers in int8; page vectors stay close to float32's, and the
    stream still equals the whole answer."""
    from PIL import Image, ImageDraw

    from rag.models.answerer import Answerer, PageImage
    from rag.models.retriever import Retriever

    page = Image.new("RGB", (595, 842), "white")
    ImageDraw.Draw(page).rectangle([60, 80, 500, 300], fill="navy")
    settings = Settings(
        retriever=str(tiny_models / "colidefics3"),
        generator=str(tiny_models / "idefics3"),
        dtype="float32",
        max_new_tokens=8,
    )
    int8 = dataclasses.replace(settings, quantize="int8")
    linear = torch.ao.nn.quantized.dynamic.Linear
    (reference,) = Retriever.load(settings).embed_pages([page])
    retriever = Retriever.load(int8)
    assert any(isinstance(module, linear) for module in retriever.model.modules())
    (vectors,) = retriever.embed_pages([page])
    assert vectors.shape == reference.shape
    assert torch.nn.functional.cosine_similarity(vectors, reference, dim=-1).mean() > 0.99
    generator = Answerer.load(int8)
    pages = [PageImage("[a.pdf p.1]", page)]
    whole = generator.answer("What?", pages)
    assert "".join(generator.stream("What?", pages)) == whole


def test_int8_off_the_cpu_is_refused_before_loading():
    from rag.models.checkpoints import load_dtype

    with pytest.raises(ConfigError, match=r"^RAG_QUANTIZE=int8 runs on the CPU only"):
        load_dtype("auto", "int8", "cuda")
    with pytest.raises(ConfigError, match="RAG_QUANTIZE"):
        Settings.from_env({"RAG_QUANTIZE": "int4"})


@pytest.mark.models
@pytest.mark.parametrize("name", families([*RETRIEVERS, *GENERATORS]))
def test_every_family_runs_in_int8(tiny_models, name):
    """The cpu profile's int8 layers load and run for every family (an adapter's own layers,
    a head on the meta device and attention-pooling projections stay as they are)."""
    from PIL import Image

    from rag.models.answerer import Answerer, PageImage
    from rag.models.retriever import Retriever

    page = Image.new("RGB", (300, 420), "white")
    if name in RETRIEVERS:
        retriever = Retriever.load(Settings(retriever=str(tiny_models / name), quantize="int8"))
        (vectors,) = retriever.embed_pages([page])
        assert vectors.shape[1] == retriever.dim and torch.isfinite(vectors).all()
        assert torch.isfinite(retriever.embed_query("revenue")).all()
    else:
        settings = Settings(generator=str(tiny_models / name), quantize="int8", max_new_tokens=4)
        assert isinstance(
            Answerer.load(settings).answer("What?", [PageImage("[a p.1]", page)]), str
        )
