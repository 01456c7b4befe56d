"""Dataset ``text_file``: sentences of a transcript file (one a line), for language-model training."""
