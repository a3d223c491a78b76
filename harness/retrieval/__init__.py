"""Passages from the documents: chunking, the dense, BM25 and hybrid retrievers over them, and the table that
builds one by its `retrieval.method` name (registry.py)."""
