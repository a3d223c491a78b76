"""The run folder read back into tables, the verdict, the cost projection, report.md and report.html."""
