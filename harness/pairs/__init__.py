"""Training pairs written from the documents: candidate answers, a question for each, the filters."""
