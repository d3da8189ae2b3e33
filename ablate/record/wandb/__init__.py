"""Weights & Biases: the tracker (``tracker``), what a run is called and how it is grouped (``naming``), and
the study-wide offline fallback (``offline``). Only ``tracker`` imports wandb, lazily."""
