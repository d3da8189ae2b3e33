"""The study: planning a multirun against its existing records, validating and counting the grid, the jobs the
launchers run, GPU slots, and the study directory (stamp, ``summary.csv``, end-of-study report)."""
