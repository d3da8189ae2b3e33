"""The record of a run: the runner that trains one run and records it, the trackers its events go to (the local
run record, W&B, the console), the claim that keeps two processes off one run, and atomic file writes."""
