"""Composing one run's config exactly as ``python -m ablate`` does, and the checks a run needs on this machine.

For single-run validation before Hydra creates an output directory, for the sweeper (``check_device``), and
for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ablate.checks import ConfigError
from ablate.config import CONF_DIR, Config
from ablate.run.user_code import uses_user_code


def check_device(device: str) -> None:
    """A CUDA ``device`` must exist on this machine; raise ConfigError with one line if it does not.

    ``auto`` and ``cpu`` always pass, without importing torch. For ``cuda`` and ``cuda:<index>`` torch is
    imported (already loaded wherever a run or the sweeper calls this) and asked how many devices it sees:
    cheap, so the sweeper calls it for each distinct device value of a study launched on this machine.
    """
    if device in ("auto", "cpu") or not (device == "cuda" or device.startswith("cuda:")):
        return  # validate() rejects any other value with its own message
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        build = "CPU build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build, no device visible"
        raise ConfigError(
            f"device={device} is not allowed here: this machine has no CUDA device (torch {torch.__version__}, "
            f"{build}); use device=auto or device=cpu, or hydra/launcher=slurm to run on GPU nodes"
        )
    index = device.partition(":")[2]
    if index and (not index.isdigit() or int(index) >= count):
        indices = "cuda:0" if count == 1 else f"cuda:0 .. cuda:{count - 1}"
        raise ConfigError(
            f"device={device} is not allowed here: this machine has {count} CUDA device{'s' if count > 1 else ''} "
            f"({indices}); use one of them, device=cuda or device=auto"
        )


def compose_config(overrides: list[str], user_dirs: Sequence[Path] = ()) -> Config:
    """The typed, validated config of one run, composed exactly as ``python -m ablate <overrides>`` does.

    For single-run validation, tests and benchmarks; raises ConfigError with a one-line message.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.errors import HydraException

    from ablate.config import register_configs, to_typed

    if "schema.yaml" not in ConfigStore.instance().repo:  # once per process: registering costs ~0.3 s
        register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            searchpath = [f"hydra.searchpath=[{','.join('file://' + str(d.absolute()) for d in user_dirs)}]"]
            cfg = compose(config_name="config", overrides=list(overrides) + (searchpath if user_dirs else []))
    except HydraException as err:
        cause = err.__cause__ or err
        raise ConfigError(str(cause).strip().splitlines()[0]) from None
    return to_typed(cfg)


def validate_single_run(args: list[str]) -> None:
    """Compose and validate a single run's config before Hydra creates its output directory."""
    from hydra._internal.utils import get_args_parser

    parsed, _ = get_args_parser().parse_known_args(args)
    if parsed.multirun or parsed.cfg or parsed.info or parsed.help or parsed.hydra_help:
        return  # studies are validated run by run by the sweeper before any starts
    user_dirs = [Path(parsed.config_dir)] if parsed.config_dir else []
    config = compose_config(parsed.overrides, user_dirs)
    check_device(config.device)  # a single run always runs on this machine
    if uses_user_code(config):
        from ablate.run.preflight import preflight  # torch: only for the user's code

        preflight(config)
