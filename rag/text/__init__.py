"""Text: normalisation, language, analysis into BM25 terms, sentences, questions, token spans.

Pure functions on strings, shared by every stage; nothing here reads an index or a model.
"""
