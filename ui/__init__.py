"""The web chat (Gradio) over the ``rag`` library: ``rag serve`` or :func:`ui.app.serve`."""
