"""ColModernVBert: ModernVBert (a 150M ModernBERT encoder reading SigLIP image tokens) with a
128-d projection, 250M parameters in all, quick on a CPU (ModernVBERT/colmodernvbert). Its
processor tiles pages as Idefics3's does, so its grid and maps are ColIdefics3's."""

from __future__ import annotations

from rag.models.families.colidefics3 import ColIdefics3


class ColModernVBert(ColIdefics3):
    name = "colmodernvbert"
    label = "ColModernVBert"
    architectures = ("ColModernVBert",)
    model_types = ("modernvbert",)
    examples = ("ModernVBERT/colmodernvbert",)
    model_class = "ColModernVBert"
    processor_class = "ColModernVBertProcessor"

    def trim(self, model):
        """Its SigLIP tower keeps SigLIP's attention-pooling head (``vision_use_head``), whose
        pooled vector ModernVBert overwrites with its connector's output: 5% of a page's
        encoding on a CPU, for nothing."""
        for module in model.modules():
            if getattr(module, "use_head", False) and hasattr(module, "head"):
                module.use_head = False
                del module.head


RETRIEVER = ColModernVBert()
