"""Passages from the documents: chunking, and the dense, BM25 and hybrid retrievers over them."""
