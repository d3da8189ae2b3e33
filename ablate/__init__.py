"""ablate: learning-rate warmup ablation studies (Hydra multiruns, run records, analysis)."""

__version__ = "0.1.0"
