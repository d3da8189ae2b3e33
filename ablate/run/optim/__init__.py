"""The optimizers a run uses: schemas in ``config`` (torch-free), ``torch.optim`` instances in ``build``."""
