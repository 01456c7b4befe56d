"""Turning a model's per-frame scores into text: CTC greedy and beam search, lexicons, grammars.

Below both training (validation WER) and inference (``Transcriber``, ``noise-eval``), so that
neither imports the other. :func:`~avtoolkit.decoding.ctc_search.build_decoder` builds the
decoder a recipe's ``decoding`` section names.
"""
