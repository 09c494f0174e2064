"""Search structures: FAISS vectors, the BM25 lexical index and its term statistics."""
