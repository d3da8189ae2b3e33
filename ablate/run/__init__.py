"""The run itself: one training job from a typed config.

Each config group's schema sits next to the code that builds it (``models/``, ``data/``, ``optim/``,
``schedules.py``, ``probes/``); ``train.py`` is the one training loop. Nothing here writes a file or knows
about W&B: the loop hands events to the trackers it is given (``ablate.record``).
"""
