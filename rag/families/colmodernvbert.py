"""ColModernVBert: ModernVBert (a 150M ModernBERT encoder reading SigLIP image tokens) with a
128-d projection, 250M parameters in all, quick on a CPU (ModernVBERT/colmodernvbert). Its
processor tiles pages as Idefics3's does, so its grid and maps are ColIdefics3's."""

from __future__ import annotations

from rag.families.colidefics3 import ColIdefics3


class ColModernVBert(ColIdefics3):
    name = "colmodernvbert"
    label = "ColModernVBert"
    architectures = ("ColModernVBert",)
    model_types = ("modernvbert",)
    examples = ("ModernVBERT/colmodernvbert",)
    model_class = "ColModernVBert"
    processor_class = "ColModernVBertProcessor"


RETRIEVER = ColModernVBert()
