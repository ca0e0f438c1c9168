"""The answerer of last resort: a checkpoint of a type no module here knows, but which has a
chat template and an image processor, is tried on the generic image-text-to-text chat-template
path (with one warning line) rather than refused."""

from __future__ import annotations

from rag.models.families.base import AnswererFamily, chat_template_inputs


class GenericChatTemplate(AnswererFamily):
    name = "generic"
    label = "generic image-text-to-text (chat template)"

    def build_inputs(self, processor, question, pages, min_pixels, max_pixels, *, history=()):
        return chat_template_inputs(processor, question, pages, history)


FALLBACK = GenericChatTemplate()
