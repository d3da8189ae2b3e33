"""The models a run trains: schemas in ``config`` (torch-free), the networks in ``build`` and ``nets``."""
