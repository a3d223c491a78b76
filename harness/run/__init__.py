"""One run: checks before any model loads, the forecast, the arms in turn, the run folder's files."""
