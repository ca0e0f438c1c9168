"""The Gradio front: built from a pipeline object; never imports torch or model classes."""
