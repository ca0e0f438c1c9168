"""The answerer on a model server (RAG_GENERATOR=openai:MODEL, rag/models/remote.py): its
settings, the requests it sends, the answers it reads, and one line for each way a server
fails, against a real HTTP server in a thread (tests/helpers/chatserver.py)."""

from __future__ import annotations

import base64
import dataclasses
import io
import subprocess
import sys
import time

import pytest
from PIL import Image

from rag.chat import Turn
from rag.config import Settings
from rag.errors import ConfigError, ModelServerError
from rag.models.families.base import PageImage
from rag.models.remote import RemoteAnswerer, chat_messages, fitted, pages_request
from tests.helpers import ROOT
from tests.helpers.chatserver import Reply, completion, error, serving, timed
from tests.helpers.servers import free_port

BUDGET = 28 * 28 * 64


def remote_settings(url: str, **changes) -> Settings:
    values = {
        "generator": "openai:tiny-vlm",
        "generator_url": url,
        "answer_max_pixels": BUDGET,
        "answer_min_pixels": 28 * 28 * 4,
        "max_new_tokens": 16,
        "generator_timeout_s": 5,
    }
    return dataclasses.replace(Settings(), **(values | changes)).validated()


def pages(n: int = 2) -> list[PageImage]:
    colours = ["white", "navy", "orange"]
    return [
        PageImage(f"[doc.pdf p.{i + 1}]", Image.new("RGB", (400, 560), colours[i % 3]))
        for i in range(n)
    ]


def decoded(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


# -- settings ---------------------------------------------------------------------------------


def test_settings_read_the_server_and_key_and_never_print_the_key():
    environ = {
        "RAG_GENERATOR": "openai:Qwen/Qwen2.5-VL-7B-Instruct",
        "RAG_GENERATOR_URL": "http://gpu-box:8000/v1",
        "RAG_GENERATOR_KEY": "sk-secret",
        "RAG_GENERATOR_TIMEOUT_S": "30",
        "RAG_GENERATOR_RETRIES": "0",
    }
    settings = Settings.from_env(environ)
    assert settings.generator_url == "http://gpu-box:8000/v1"
    assert (settings.generator_timeout_s, settings.generator_retries) == (30, 0)
    assert settings.generator_key == "sk-secret"
    assert "sk-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"RAG_GENERATOR": "openai:m"}, "needs RAG_GENERATOR_URL"),
        ({"RAG_GENERATOR": "openai:", "RAG_GENERATOR_URL": "http://h/v1"}, "names no model"),
        ({"RAG_GENERATOR": "openai:m", "RAG_GENERATOR_URL": "h:8000/v1"}, "not an http"),
        ({"RAG_GENERATOR_URL": "http://h/v1"}, "is a local model"),
        (
            {
                "RAG_GENERATOR": "openai:m",
                "RAG_GENERATOR_URL": "http://h",
                "RAG_GENERATOR_TIMEOUT_S": "0",
            },
            "RAG_GENERATOR_TIMEOUT_S must be positive",
        ),
    ],
)
def test_a_remote_answerer_without_its_server_is_refused_in_one_line(environ, says):
    with pytest.raises(ConfigError, match=says) as caught:
        Settings.from_env(environ)
    assert "\n" not in str(caught.value)


def test_the_cpu_profile_with_a_remote_answerer_keeps_its_retrieval_and_the_default_pages():
    remote = {"RAG_GENERATOR": "openai:m", "RAG_GENERATOR_URL": "http://h:8000/v1"}
    local = Settings.from_env({"RAG_PROFILE": "cpu"})
    settings = Settings.from_env({"RAG_PROFILE": "cpu", **remote})
    assert (settings.retriever, settings.max_visual_tokens) == (
        local.retriever,
        local.max_visual_tokens,
    )
    assert settings.quantize == local.quantize == "int8"  # the retriever's linear layers
    assert settings.generator == "openai:m"
    assert settings.answer_max_pixels == Settings.answer_max_pixels  # not the cpu cut
    assert settings.answer_rest_max_pixels == 0 < local.answer_rest_max_pixels
    flagged = Settings.from_env(
        {"RAG_PROFILE": "cpu"}, generator="openai:m", generator_url="http://h"
    )
    assert flagged.answer_rest_max_pixels == 0  # --generator too


# -- the request ------------------------------------------------------------------------------


def test_the_request_is_the_in_process_prompt_with_pages_as_png_within_their_budgets():
    settings = remote_settings("http://127.0.0.1:9/v1", answer_rest_max_pixels=28 * 28 * 16)
    answerer = RemoteAnswerer(settings)
    history = [Turn("What is the revenue?", "12 M€ [doc.pdf p.1]"), Turn("And costs?", "")]
    shown = [dataclasses.replace(pages()[0], text="Revenue 12 M€"), pages()[1]]
    messages = answerer.messages("And in 2023?", shown, history)
    assert messages[:3] == [
        {"role": "user", "content": "What is the revenue?"},
        {"role": "assistant", "content": "12 M€ [doc.pdf p.1]"},
        {"role": "user", "content": "And costs?"},
    ]
    (last,) = messages[3:]
    kinds = [part["type"] for part in last["content"]]
    assert kinds == ["text", "image_url", "text", "image_url", "text"]
    caption, first, label, second, prompt = last["content"]
    assert caption["text"] == "[doc.pdf p.1]\nText of this page: Revenue 12 M€"
    assert label["text"] == "[doc.pdf p.2]"
    assert prompt["text"].endswith("\nQuestion: And in 2023?")
    assert "[doc.pdf p.1]" in prompt["text"]  # the example citation
    best, rest = decoded(first["image_url"]["url"]), decoded(second["image_url"]["url"])
    assert best.width * best.height <= BUDGET < (best.width + 1) * (best.height + 1)
    assert rest.width * rest.height <= 28 * 28 * 16
    assert abs(best.width / best.height - 400 / 560) < 0.02  # aspect kept
    assert best.tobytes() == fitted(shown[0].image, BUDGET).tobytes()  # lossless


def test_a_page_within_its_budget_is_sent_as_it_is_and_a_page_encoded_once():
    answerer = RemoteAnswerer(remote_settings("http://127.0.0.1:9/v1"))
    small = PageImage("[a.png p.1]", Image.new("RGB", (60, 80), "teal"))
    first = answerer.messages("q", [small])[-1]["content"][1]["image_url"]["url"]
    assert decoded(first).size == (60, 80)
    again = answerer.messages("q", [small])[-1]["content"][1]["image_url"]["url"]
    assert again is first  # from the encoded pages, not encoded again


def test_the_request_reads_back_as_the_same_question_pages_and_history():
    history = (Turn("Revenue?", "12 M€ [doc.pdf p.1]"), Turn("Costs?", ""))
    sent = [dataclasses.replace(p, image=fitted(p.image, BUDGET)) for p in pages(3)]
    sent[1] = dataclasses.replace(sent[1], text="Costs 3 M€")
    answerer = RemoteAnswerer(remote_settings("http://127.0.0.1:9/v1"))
    read = pages_request(answerer.messages("And in 2023?", sent, history))
    assert read is not None
    assert (read.question, read.history) == ("And in 2023?", history)
    assert [(p.label, p.text) for p in read.pages] == [(p.label, p.text) for p in sent]
    assert [p.image.tobytes() for p in read.pages] == [p.image.tobytes() for p in sent]
    # Another client's message is not mistaken for one.
    plain = [{"role": "user", "content": "hello"}]
    assert pages_request(plain) is None
    assert pages_request(chat_messages("q", sent[:1], (), ["https://x/y.png"])) is None


def test_answer_posts_a_greedy_completion_with_the_key_and_reads_its_text():
    with serving([Reply(body=completion("Revenue is 12 M€ [doc.pdf p.1]"))]) as (url, server):
        answerer = RemoteAnswerer(remote_settings(url, generator_key="sk-test"))
        assert answerer.answer("Revenue?", pages(), 8) == "Revenue is 12 M€ [doc.pdf p.1]"
    (request,) = server.seen
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["Authorization"] == "Bearer sk-test"
    body = request.body
    assert (body["model"], body["max_tokens"], body["temperature"], body["stream"]) == (
        "tiny-vlm",
        8,
        0,
        False,
    )


def test_no_key_sends_no_authorization():
    with serving([Reply(body=completion("ok"))]) as (url, server):
        RemoteAnswerer(remote_settings(url)).answer("q", pages(1))
    assert "Authorization" not in server.seen[0].headers


# -- streaming, stop --------------------------------------------------------------------------


def test_stream_yields_the_pieces_in_order():
    raw = [": keep-alive", "event: message", 'data: {"choices": []}', "data: [DONE]"]
    with serving([Reply(chunks=["Rev", "", "enue ", "12 M€"], raw=raw)]) as (url, server):
        pieces = list(RemoteAnswerer(remote_settings(url)).stream("Revenue?", pages()))
    assert pieces == ["Rev", "enue ", "12 M€"]
    assert server.seen[0].body["stream"] is True


def test_closing_the_stream_closes_the_response_and_the_server_sees_it():
    reply = Reply(chunks=[f"w{i} " for i in range(200)], pause_s=0.02)
    with serving([reply]) as (url, server):
        stream = RemoteAnswerer(remote_settings(url)).stream("q", pages(1))
        assert next(stream) == "w0 "
        stream.close()  # the stop button
        assert server.disconnected.wait(5), "the server kept writing to a closed stream"


def test_an_error_in_the_middle_of_a_stream_is_one_line():
    raw = ["data: " + '{"error": {"message": "out of memory\\nat layer 3"}}']
    with serving([Reply(chunks=["Rev"], raw=raw)]) as (url, _server):
        stream = RemoteAnswerer(remote_settings(url)).stream("q", pages(1))
        assert next(stream) == "Rev"
        with pytest.raises(ModelServerError, match=r"stopped the answer: out of memory$"):
            next(stream)


def test_rewrite_asks_a_text_only_question_and_keeps_its_first_line():
    reply = Reply(body=completion("What were the costs in 2023?\nBecause..."))
    with serving([reply]) as (url, server):
        answerer = RemoteAnswerer(remote_settings(url))
        rewritten = answerer.rewrite("and in 2023?", [Turn("Costs?", "3 M€")])
    assert rewritten == "What were the costs in 2023?"
    (message,) = server.seen[0].body["messages"]
    assert isinstance(message["content"], str) and "Follow-up: and in 2023?" in message["content"]


# -- retries and failures ---------------------------------------------------------------------


def test_busy_and_failing_servers_are_tried_again_with_back_off():
    replies = [
        Reply(429, error("slow down", "rate_limit_exceeded"), headers={"Retry-After": "0"}),
        Reply(503, error("loading")),
        Reply(body=completion("fine")),
    ]
    with serving(replies) as (url, server):
        seconds, answer = timed(lambda: RemoteAnswerer(remote_settings(url)).answer("q", pages(1)))
    assert answer == "fine"
    assert len(server.seen) == 3
    assert 1.0 <= seconds < 4  # no wait after the Retry-After: 0, then 2 x 0.5 s


def test_a_server_busy_beyond_the_retries_says_so():
    reply = Reply(429, error("queue full"), headers={"Retry-After": "0"})
    with serving([reply]) as (url, server):
        answerer = RemoteAnswerer(remote_settings(url, generator_retries=1))
        with pytest.raises(ModelServerError, match=r"busy or failing \(HTTP 429, 2 tries\)"):
            list(answerer.stream("q", pages(1)))
    assert len(server.seen) == 2


def test_a_server_that_is_down_is_one_line_after_its_tries():
    url = f"http://127.0.0.1:{free_port()}/v1"
    answerer = RemoteAnswerer(remote_settings(url, generator_retries=1))
    seconds, caught = timed(lambda: answerer.answer("q", pages(1)))
    assert isinstance(caught, ModelServerError)
    assert f"the model server at {url} is not reachable" in str(caught)
    assert "2 tries): is it running? (RAG_GENERATOR_URL)" in str(caught)
    assert seconds < 3


def test_a_silent_server_times_out_in_one_line():
    with serving([Reply(body=completion("late"), hang_s=3)]) as (url, _server):
        answerer = RemoteAnswerer(remote_settings(url, generator_timeout_s=1))
        seconds, caught = timed(lambda: list(answerer.stream("q", pages(1))))
    assert isinstance(caught, ModelServerError)
    assert str(caught).endswith("sent nothing for 1 s (RAG_GENERATOR_TIMEOUT_S)")
    assert seconds < 2.5


@pytest.mark.parametrize(
    ("reply", "models", "says"),
    [
        (Reply(401, error("Invalid API key", "invalid_api_key")), ["tiny-vlm"], "refused the key"),
        (
            Reply(404, error("The model `tiny-vlm` does not exist.", 404)),
            ["qwen2-vl", "smolvlm"],
            r"has no model 'tiny-vlm' \(it serves: qwen2-vl, smolvlm\); set RAG_GENERATOR=openai:",
        ),
        (Reply(404, {"detail": "Not Found"}), None, "does RAG_GENERATOR_URL end with"),
        (
            Reply(400, error("This model does not support image input")),
            ["tiny-vlm"],
            "'tiny-vlm' does not take images",
        ),
        (
            Reply(400, error("At most 0 image(s) may be provided in one request.", 400)),
            ["tiny-vlm"],
            "does not take images",
        ),
        (
            Reply(
                400,
                error(
                    "This model's maximum context length is 4096 tokens", "context_length_exceeded"
                ),
            ),
            ["tiny-vlm"],
            "more than 'tiny-vlm' takes .*lower RAG_ANSWER_MAX_PIXELS or RAG_TOP_K",
        ),
        (Reply(413, "Request Entity Too Large"), ["tiny-vlm"], "lower RAG_ANSWER_MAX_PIXELS"),
        (Reply(400, {"error": "invalid temperature"}), ["tiny-vlm"], "refused the request"),
    ],
    ids=["key", "model", "path", "images", "images-vllm", "context", "too-large", "other"],
)
def test_each_refusal_is_one_line_that_says_what_to_change(reply, models, says):
    with serving([reply], models) as (url, _server):
        answerer = RemoteAnswerer(remote_settings(url))
        with pytest.raises(ModelServerError, match=says) as caught:
            answerer.answer("q", pages(1))
        with pytest.raises(ModelServerError, match=says):
            list(answerer.stream("q", pages(1)))
    assert "\n" not in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_a_reply_that_is_not_a_completion_is_one_line():
    with (
        serving([Reply(body={"choices": "nope"})]) as (url, _server),
        pytest.raises(ModelServerError, match="not a chat completion"),
    ):
        RemoteAnswerer(remote_settings(url)).answer("q", pages(1))


def test_the_start_up_check_names_the_problem_or_none():
    with serving([Reply(body=completion("ok"))], ["tiny-vlm"]) as (url, _server):
        assert RemoteAnswerer(remote_settings(url)).problem() is None
    with serving([Reply(body=completion("ok"))], ["other"]) as (url, _server):
        assert (
            "has no model 'tiny-vlm' (it serves: other)"
            in RemoteAnswerer(remote_settings(url)).problem()
        )
    down = RemoteAnswerer(remote_settings(f"http://127.0.0.1:{free_port()}/v1"))
    assert "is not reachable" in down.problem()


# -- nothing loads locally --------------------------------------------------------------------


def test_models_with_a_remote_answerer_load_no_model_library_and_hold_no_device():
    script = (
        "import sys\n"
        "from rag.config import Settings\n"
        "from rag.models.loaded import Models\n"
        "settings = Settings(generator='openai:m', generator_url='http://127.0.0.1:9/v1')\n"
        "models = Models(settings.validated())\n"
        "answerer = models.answerer\n"
        "with models.answering():\n"
        "    assert not models.busy.locked()\n"
        "libraries = ('transformers', 'colpali_engine', 'qwen_vl_utils')\n"
        "loaded = [m for m in libraries if m in sys.modules]\n"
        "print(type(answerer).__name__, loaded)\n"
    )
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "RemoteAnswerer []"
    assert time.monotonic() - start < 20
