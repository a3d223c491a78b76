"""Loading a generator and answering in batches, cached by content."""
