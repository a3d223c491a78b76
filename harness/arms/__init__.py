"""The arms: what each is (catalog), how it is built and trained, and the one Pipeline interface."""
