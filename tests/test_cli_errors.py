"""Bad input to ``python -m analysis`` and ``python -m ablate.status``: one line on stderr, exit 2, nothing
half-written (issue 13, "Bad input that still writes, hangs or misleads"). Study directories are made by hand,
the way ``python -m ablate`` writes them (``tests.test_analysis_load.write_run``), and the commands are called
in-process through their ``main(argv)``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import analysis.__main__ as analysis_cli
from ablate import status
from analysis.load import load_study
from tests.test_analysis_load import config_for, write_run, write_stamp

CORRUPT = '{"run_id": "0123456789abcdef", "status": "compl'  # cut off mid-write by a full disk or a crash


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single line a command printed on stderr (and nothing on stdout)."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and captured.out == "", captured
    return lines[0]


def analyse(*args: str | Path) -> int:
    return analysis_cli.main([*(str(a) for a in args), "--wandb", "off"])


def unrelated_dir(root: Path) -> Path:
    """Files that are not a study, one of them a ``result.json`` of some other tool."""
    root.mkdir()
    (root / "notes.txt").write_text("hello\n")
    (root / "result.json").write_text(json.dumps({"accuracy": 0.9}))
    (root / "sub").mkdir()
    (root / "sub" / "config.yaml").write_text("x: 1\n")
    return root


def study_of(root: Path, statuses: dict[int, str], stamp_grid: bool = True) -> Path:
    """A study ``warmup=W,seed=S`` (W in ``statuses``, seeds 0 and 1) whose runs end with the given status."""
    write_stamp(root, "warmup", "seed")
    grid = []
    for warmup, state in statuses.items():
        for seed in (0, 1):
            name = f"warmup={warmup},seed={seed}"
            error = f"RuntimeError: boom at warmup {warmup}" if state == "failed" else None
            run_id, overrides = f"{warmup:08d}{seed:08d}", [f"warmup={warmup}", f"seed={seed}"]
            config = config_for(warmup=warmup, seed=seed)
            write_run(root, name, config=config, status=state, run_id=run_id, overrides=overrides, error=error)
            grid.append({"run": name, "run_id": run_id, "overrides": overrides})
    if stamp_grid:
        stamp = {"multirun_id": "m1", "factors": ["warmup", "seed"], "grid": grid}
        (root / "study.json").write_text(json.dumps(stamp))
    return root


# ---------------------------------------------------------------------------------------------------- not a study


def test_analysis_of_what_is_not_a_study_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    unrelated = unrelated_dir(tmp_path / "unrelated")
    assert analyse(unrelated) == 2
    line = one_line(capsys)
    assert line.startswith(f"error: {unrelated} is not a study: no run records (result.json files written by")
    assert "not a run record (no run_id and no status)" in line
    assert line.endswith("pass a study directory such as outputs/studies/<name>")
    assert not (unrelated / "report").exists()

    (tmp_path / "empty").mkdir()
    assert analyse(tmp_path / "empty") == 2
    assert "the directory is empty; pass a study directory" in one_line(capsys)
    assert analyse("nowhere") == 2
    assert one_line(capsys) == (
        "error: nowhere (nor outputs/studies/nowhere) is not a study: no such directory; no study under "
        "outputs/studies; pass a study directory such as outputs/studies/<name>"
    )
    assert analyse(tmp_path / "nowhere") == 2
    assert one_line(capsys).startswith(f"error: {tmp_path / 'nowhere'} is not a study: no such directory; no study")
    assert not (tmp_path / "empty" / "report").exists() and not (tmp_path / "nowhere").exists()


def test_status_of_what_is_not_a_study_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unrelated = unrelated_dir(tmp_path / "unrelated")
    assert status.main([str(unrelated)]) == 2
    line = one_line(capsys)
    assert line.startswith(f"error: {unrelated} holds no study: no study.json and no run records (result.json")
    assert f"unreadable result.json at {unrelated / 'result.json'}: not a run record (no run_id)" in line
    (tmp_path / "empty").mkdir()
    assert status.main([str(tmp_path / "empty")]) == 2
    assert "holds no study" in one_line(capsys)
    (tmp_path / "file.txt").write_text("x")
    assert status.main([str(tmp_path / "file.txt")]) == 2
    assert "it is a file, not a directory" in one_line(capsys)


def test_a_study_is_found_by_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    study_of(Path("outputs/studies/first"), {0: "completed"})
    study_of(Path("outputs/studies/group/second"), {0: "failed"})
    assert status.main(["first"]) == 0
    assert capsys.readouterr().out.startswith("study outputs/studies/first: 2 runs: 2 done")
    assert status.main(["group/second"]) == 0
    assert capsys.readouterr().out.startswith("study outputs/studies/group/second: 2 runs: 2 failed")

    assert status.main(["third"]) == 2
    assert one_line(capsys) == (
        "error: third (nor outputs/studies/third) is not a study: no such directory; "
        "studies under outputs/studies: first, group/second"
    )
    assert analyse("third") == 2
    assert "studies under outputs/studies: first, group/second" in one_line(capsys)
    assert analyse("group/second") == 2  # found by name; all its runs failed (the next test)
    assert "no run of outputs/studies/group/second has a result" in one_line(capsys)

    monkeypatch.chdir(tmp_path / "outputs")  # no outputs/studies here
    assert status.main(["first"]) == 2
    assert "no study under outputs/studies; pass a study directory" in one_line(capsys)


# ---------------------------------------------------------------------------------------------------- all failed


def test_a_study_whose_runs_all_failed_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = study_of(tmp_path / "s", {0: "failed", 10: "failed"})
    assert analyse(study) == 2
    assert one_line(capsys) == (
        f"error: no run of {study} has a result (completed or diverged): 4 failed (first error: RuntimeError: "
        f"boom at warmup 0); nothing to analyse; see python -m ablate.status {study}"
    )
    assert not (study / "report").exists()


def test_a_control_whose_runs_all_failed_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = study_of(tmp_path / "s", {0: "failed", 10: "completed", 20: "completed"})
    assert analyse(study) == 2
    assert one_line(capsys) == (
        "error: the default control warmup=0: no run of it has a result (completed or diverged): 2 failed (first "
        "error: RuntimeError: boom at warmup 0); pass --control warmup=<value> with a value whose runs have "
        "results: 10, 20"
    )
    assert not (study / "report").exists()


# ---------------------------------------------------------------------------------------------------- the report


def report_state(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_a_failed_report_leaves_the_previous_one_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    study = study_of(tmp_path / "s", {0: "completed", 10: "completed"})
    out = study / "report"
    fast = ("--figures", "convergence", "--formats", "png")
    assert analyse(study, *fast) == 0
    capsys.readouterr()
    (out / "wandb").mkdir()
    (out / "wandb" / "keep").write_text("the analysis run's offline data")
    before = report_state(out)
    assert {"report.md", "report.html", "figures/convergence.png", "tables/runs.csv"} <= set(before)

    def broken(*args: object, **kwargs: object) -> None:
        assert any((study / name).is_dir() for name in os.listdir(study) if name.startswith(".report.partial-"))
        raise ValueError("no pairs to compare\nsecond line")

    with monkeypatch.context() as patch:  # fails after the figures were drawn
        patch.setattr(analysis_cli, "build", broken)
        assert analyse(study, "--figures", "convergence,lr_schedule", "--formats", "png") == 2
    assert one_line(capsys) == "error: no pairs to compare"
    assert report_state(out) == before
    assert sorted(os.listdir(study)) == ["report", "study.json", *sorted(n for n in os.listdir(study) if "=" in n)]

    assert analyse(study, "--control", "warmup=7") == 2
    assert one_line(capsys).startswith("error: --control warmup=7: no run has warmup=7; values: 0, 10")
    assert report_state(out) == before

    (study / "warmup=10,seed=0" / "result.json").write_text(CORRUPT)  # the next report differs
    assert analyse(study, "--figures", "convergence,lr_schedule", "--formats", "png") == 0
    after = report_state(out)
    assert after["wandb/keep"] == before["wandb/keep"] and after["report.md"] != before["report.md"]
    assert "figures/lr_schedule.png" in after
    assert not [name for name in os.listdir(study) if name.startswith(".report.")]


def test_out_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = study_of(tmp_path / "s", {0: "completed", 10: "completed"})
    (tmp_path / "taken").write_text("x")
    assert analyse(study, "--out", tmp_path / "taken") == 2
    assert one_line(capsys).endswith("a file, not a directory; pass a directory for the report")
    assert (tmp_path / "taken").read_text() == "x"


# ---------------------------------------------------------------------------------------------------- unreadable


def test_analysis_names_an_unreadable_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = study_of(tmp_path / "s", {0: "completed", 10: "completed"})
    bad = study.resolve() / "warmup=10,seed=1" / "result.json"
    bad.write_text(CORRUPT)
    with pytest.warns(UserWarning) as caught:
        loaded = load_study(study)
    reason = "Unterminated string starting at: line 1 column 42 (char 41)"
    assert [str(w.message) for w in caught] == [f"unreadable result.json at {bad}: {reason}; left out"]
    assert loaded.unreadable == {bad: reason} and loaded.incomplete == [] and len(loaded.runs) == 3
    counts = analysis_cli.counts_table(loaded, analysis_cli.F.run_outcomes(loaded.runs))
    assert counts.iloc[-1].tolist() == ["unreadable result.json", 1, "left out"]

    only = tmp_path / "only"
    write_run(only, "0")
    (only / "0" / "result.json").write_text("")
    assert analyse(only) == 2
    line = one_line(capsys)
    assert f"unreadable result.json at {only.resolve() / '0' / 'result.json'}: Expecting value: line 1" in line
    assert "without result.json" not in line


@pytest.mark.parametrize("stamp_grid", [True, False], ids=["grid", "records only"])
def test_status_shows_an_unreadable_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stamp_grid: bool
) -> None:
    study = study_of(tmp_path / "s", {0: "completed", 10: "failed"}, stamp_grid=stamp_grid)
    bad = study / "warmup=10,seed=1" / "result.json"
    bad.write_text(CORRUPT)
    assert status.main([str(study)]) == 0
    lines = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == f"study {study}: 4 runs: 2 done, 1 failed, 1 unreadable"
    assert lines[-1] == f"unreadable result.json at {bad}: Unterminated string starting at: line 1 column 42 (char 41)"
    assert lines[1:4] == ["warmup  seed=0  seed=1", "0       done    done", "10      failed  unreadable"]
    assert "missing" not in "\n".join(lines)
