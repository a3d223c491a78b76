"""The task folder a team brings: its documents, questions and pairs, checked; the deployment it plans."""
