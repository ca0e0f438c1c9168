"""A first web front over the pipeline: upload PDFs, ask, read the streamed answer and see the
retrieved pages. (The full UI, with heatmaps, public mode and the API, is built on this.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from rag.errors import RagError
from rag.pipeline import Pipeline


def build_demo(pipeline: Pipeline, public: bool = False) -> gr.Blocks:
    def list_documents() -> list[list[object]]:
        return [[d.name, d.pages, d.added, d.doc_id] for d in pipeline.documents()]

    def upload(files: list[str] | None, progress=gr.Progress()) -> tuple[str, list[list[object]]]:
        def report(done: int, total: int, name: str) -> None:
            progress((done, total), desc=f"{name}: page {done} of {total}")

        messages = []
        for file in files or []:
            result = pipeline.add_pdf(Path(file), progress=report)
            messages.append(result.message)
        return "\n".join(messages), list_documents()

    def ask(question: str) -> Iterator[tuple[str, list[tuple[str, str]]]]:
        try:
            answer = pipeline.ask(question)
        except RagError as error:
            raise gr.Error(str(error)) from None
        gallery = [(str(h.image_path), f"{h.citation} score {h.score:.2f}") for h in answer.hits]
        text = ""
        yield text, gallery
        for piece in answer.stream():
            text += piece
            yield text, gr.skip()

    with gr.Blocks(title="Ask your PDFs") as demo:
        gr.Markdown("# Ask your PDFs")
        with gr.Row():
            files = gr.File(label="PDFs", file_count="multiple", file_types=[".pdf"])
            status = gr.Textbox(label="Indexing", lines=4)
        documents = gr.Dataframe(headers=["name", "pages", "added", "id"], label="Documents")
        question = gr.Textbox(label="Question", elem_id="q")
        answer = gr.Markdown(elem_id="answer")
        gallery = gr.Gallery(label="Retrieved pages", columns=3)
        files.upload(upload, files, [status, documents], concurrency_limit=1)
        question.submit(ask, question, [answer, gallery], concurrency_limit=1)
        demo.load(list_documents, None, documents)
    return demo
