"""Schemas of the ``data`` and ``skew`` config groups and the checks of their own fields; how many groups and
training examples a dataset has, read from its config without building it.

Rules across groups (which model fits which data, batch size against the training set, a skew's group
against the dataset's groups) are in ``ablate.config.validate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ablate.checks import check, check_at_least_one, check_target, check_user_part, described, is_finite

DIGITS_TOTAL = 1797  # examples in scikit-learn's bundled 8x8 digits
CUE_AFTER = ("kept", "removed", "shuffled")


def _check_seed(seed: int) -> None:
    check(
        seed >= 0,
        f"data.seed={seed} is not allowed: it must be an integer >= 0 (numpy seeds are non-negative); e.g. data.seed=0",
    )


@dataclass
class ClustersConfig:
    name: str = described("dataset")
    seed: int = described("seed of the generated dataset (fixed across runs; `seed` varies init and batch order)")
    n_train: int = described("training examples")
    n_eval: int = described("held-out examples")
    n_features: int = described("input dimension")
    n_classes: int = described("number of labels")
    clusters_per_class: int = described("Gaussian clusters per label (the groups used by data skew)")
    center_scale: float = described("standard deviation of the cluster centres")
    noise_scale: float = described("standard deviation of each example around its centre")

    def check(self) -> None:
        _check_seed(self.seed)
        check_at_least_one("data", self, ("n_train", "n_eval", "n_features", "n_classes", "clusters_per_class"))
        check(
            self.n_classes >= 2,
            f"data.n_classes={self.n_classes} is not allowed: it must be >= 2, e.g. data.n_classes=10",
        )
        for key, example in (("center_scale", 1.0), ("noise_scale", 1.2)):
            value = getattr(self, key)
            check(
                is_finite(value) and value >= 0,
                f"data.{key}={value} is not allowed: it must be a finite standard deviation >= 0, "
                f"e.g. data.{key}={example}",
            )


@dataclass
class DigitsConfig:
    name: str = described("dataset")
    seed: int = described("seed of the train/held-out split")
    eval_fraction: float = described("share of the 1797 digits held out for evaluation")

    def check(self) -> None:
        _check_seed(self.seed)
        check(
            0.0 < self.eval_fraction < 1.0 and 1 <= round(DIGITS_TOTAL * self.eval_fraction) < DIGITS_TOTAL,
            f"data.eval_fraction={self.eval_fraction} is not allowed: it must be in (0, 1) and leave at least one of "
            f"the {DIGITS_TOTAL} digits on each side, e.g. 0.25",
        )


@dataclass
class SortConfig:
    name: str = described("dataset")
    seed: int = described("seed of the generated sequences")
    n_train: int = described("training sequences")
    n_eval: int = described("held-out sequences")
    seq_len: int = described("tokens per sequence")
    vocab_size: int = described("distinct tokens (chance token accuracy is about 1/vocab_size)")
    n_groups: int = described("groups: each draws its tokens from its own band of the vocabulary")
    format: str = described(
        "aligned (target i = output token i, for bidirectional attention) or lm (x SEP y, left to right)"
    )

    def check(self) -> None:
        _check_seed(self.seed)
        check_at_least_one("data", self, ("n_train", "n_eval", "seq_len", "n_groups"))
        check(
            self.vocab_size >= 2,
            f"data.vocab_size={self.vocab_size} is not allowed: it must be >= 2, e.g. data.vocab_size=16",
        )
        check(self.format in ("aligned", "lm"), f"data.format={self.format} is not allowed: choose aligned or lm")
        check(
            self.n_groups <= self.vocab_size,
            f"data.n_groups={self.n_groups} is not allowed with data.vocab_size={self.vocab_size}: at most one group "
            "per token; lower data.n_groups or raise data.vocab_size",
        )


@dataclass
class TeacherConfig:
    name: str = described("dataset")
    seed: int = described("seed of the inputs and of the teacher network")
    n_train: int = described("training examples (batch_size=full trains on all of them every step)")
    n_eval: int = described("held-out examples")
    n_features: int = described("input dimension; inputs ~ N(0, I)")
    teacher_width: int = described("hidden units of the random tanh teacher y = v . tanh(W x) (W, v ~ N(0, 1/fan_in))")
    noise_std: float = described("label noise added to the teacher's output, before standardising")
    n_groups: int = described("groups for skew: equal-count bins of the first input feature")

    def check(self) -> None:
        _check_seed(self.seed)
        check_at_least_one("data", self, ("n_train", "n_eval", "n_features", "teacher_width", "n_groups"))
        check(
            is_finite(self.noise_std) and self.noise_std >= 0,
            f"data.noise_std={self.noise_std} is not allowed: it must be a finite standard deviation >= 0, "
            "e.g. data.noise_std=0.1",
        )
        check(
            self.n_groups <= self.n_train,
            f"data.n_groups={self.n_groups} is not allowed with data.n_train={self.n_train}: at most one group per "
            "example; lower data.n_groups",
        )


DATASETS: dict[str, type] = {
    "clusters": ClustersConfig,
    "digits": DigitsConfig,
    "sort": SortConfig,
    "reverse": SortConfig,
    "teacher": TeacherConfig,
}
"""Option of the ``data`` group -> its schema."""

TASK_CHOICES = ("auto", "classification", "regression")


def _check_task(task: str) -> None:
    check(task in TASK_CHOICES, f"data.task={task} is not allowed: choose one of {', '.join(TASK_CHOICES)}")


@dataclass
class NpzConfig:
    """Arrays from disk: ``data=npz data.path=train.npz`` (keys ``x``, ``y``, optional ``group``, ``eval_*``)."""

    name: str = described("dataset")
    path: str = described(
        "the .npz file (numpy.savez) with arrays x, y and optionally group, eval_x, eval_y, eval_group"
    )
    task: str = described("auto (integer y: classification, float y: regression), classification or regression")
    eval_fraction: float = described("share held out for evaluation when the file has no eval_x and eval_y")
    seed: int = described("seed of the train/held-out split")

    def check(self) -> None:
        _check_seed(self.seed)
        _check_task(self.task)
        check(self.path != "", "data.path= is not allowed: give the .npz file, e.g. data.path=data/train.npz")
        check(
            0.0 < self.eval_fraction < 1.0,
            f"data.eval_fraction={self.eval_fraction} is not allowed: it must be in (0, 1), e.g. 0.2",
        )
        check(  # whether it exists is checked where it is read, before any run starts (it may live on a cluster)
            self.path.endswith(".npz"),
            f"data.path={self.path} is not allowed: give an .npz file (numpy.savez writes one), "
            "e.g. data.path=data/train.npz",
        )


@dataclass
class CustomDataConfig:
    """The user's data factory by import path: ``data=custom data.target=mypkg.data:make`` or a config file
    ``conf/data/<name>.yaml`` with ``_target_`` and the arguments beside it."""

    name: str = described("the dataset's name in run labels and W&B (custom, or the name its config file gives)")
    target: str = described("import path of the data factory: returns a Dataset or (train, held_out) torch datasets")
    args: dict[str, Any] = field(default_factory=dict, metadata={"help": "keyword arguments of the factory"})
    task: str = described("auto (integer y: classification, float y: regression), classification or regression")

    def check(self) -> None:
        check_target("data.target", self.target, "mypkg.data:make")
        check_user_part("data", self.name, self.args)
        _check_task(self.task)


DATASETS["npz"] = NpzConfig
DATASETS["custom"] = CustomDataConfig
LOADED = (NpzConfig, CustomDataConfig)  # sizes and groups known only once loaded (checked before the first run)


def n_groups(data: Any) -> int:
    """How many groups of related examples a dataset has (skew favours one; evaluation reports each)."""
    if isinstance(data, ClustersConfig):
        return data.clusters_per_class
    if isinstance(data, DigitsConfig):
        return 10
    if isinstance(data, LOADED):
        raise ValueError(f"data={data.name}: its groups are known once it is loaded")
    return int(data.n_groups)


def train_size(data: Any) -> int:
    """Training examples of a dataset config."""
    if isinstance(data, DigitsConfig):
        return DIGITS_TOTAL - round(DIGITS_TOTAL * data.eval_fraction)
    return int(data.n_train)


@dataclass
class SkewConfig:
    name: str = described("batch order: none (i.i.d.), cluster, spurious or sorted")
    steps: int = described("length of the skew phase in updates (also the early window of the over-fitting measures)")
    group: int = described("the favoured group of related examples (dataset-defined; evaluated as eval/early/*)")
    strength: float = described("cluster, spurious: share of every skew-phase batch drawn from the favoured group")
    cue_strength: float = described("spurious: size of the label cue added to the favoured group's first features")
    cue_after: str = described(
        "spurious: the cue after the skew phase: kept (on the favoured group throughout), removed (gone from the "
        "training data) or shuffled (on a random wrong label, so relying on it now hurts)"
    )
    recovery_tolerance: float = described("rest group within this relative distance of its final loss = recovered")

    def check(self) -> None:
        check(
            self.steps >= 0, f"skew.steps={self.steps} is not allowed: it must be an integer >= 0, e.g. skew.steps=200"
        )
        check(
            0.0 < self.strength <= 1.0,
            f"skew.strength={self.strength} is not allowed: it must be in (0, 1], e.g. 0.75",
        )
        check(
            is_finite(self.cue_strength) and self.cue_strength >= 0,
            f"skew.cue_strength={self.cue_strength} is not allowed: it must be a finite number >= 0 (0: no cue), "
            "e.g. skew.cue_strength=3",
        )
        check(
            is_finite(self.recovery_tolerance) and self.recovery_tolerance > 0,
            f"skew.recovery_tolerance={self.recovery_tolerance} is not allowed: it must be a finite number > 0, "
            "e.g. skew.recovery_tolerance=0.05",
        )
        check(
            self.cue_after in CUE_AFTER,
            f"skew.cue_after={self.cue_after} is not allowed: choose one of {', '.join(CUE_AFTER)}",
        )


SKEWS: dict[str, type] = {"none": SkewConfig, "cluster": SkewConfig, "spurious": SkewConfig, "sorted": SkewConfig}
"""Option of the ``skew`` group -> its schema."""
