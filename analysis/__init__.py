"""Turns a study's run records into tables, figures and a report. Reads run records only: no torch."""
