"""The engine: PDFs to page images, ColPali-family retrieval, VLM answers, heatmaps.

Nothing here imports gradio, and nothing heavy is imported at package import time.
"""
