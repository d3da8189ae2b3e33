"""What the command line does before Hydra runs: an early check of the overrides (``overrides``), composing
and checking a single run (``compose``), and ``--help`` (``help``)."""
