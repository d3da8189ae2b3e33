"""The data a run trains on: schemas in ``config`` (torch-free), datasets as tensors (``build`` and one module
per dataset), the i.i.d. batch sampler and the skewed batch order (``skew``)."""
