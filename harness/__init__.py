"""Fine-tuning vs RAG vs prompting, measured on a task folder's questions."""
__version__ = "0.1.0"
