"""What the command line prints (issue 13): progress off a terminal is plain lines, a clean `hfops eval`
prints only hfops' own lines on stderr, `eval --nightly` ends with a summary of the skipped models by
reason."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hfops import cli
from hfops.cli import ProgressLine
from hfops.evals.nightly import skipped_by_reason
from hfops.evals.records import SkippedModel
from hfops.evals.starter import MINILM_ID, SMOLLM2_ID
from hfops.paths import HUB_SNAPSHOT

HFOPS = [sys.executable, "-m", "hfops.cli"]
# One progress line of ProgressLine: optional bar and count, the message, the timing.
PROGRESS = re.compile(r"^(\[[#.]{30}\] \d+/\d+ )?\S.* \((\d+m)?\d+s elapsed(, ~(\d+m)?\d+s left)?\)$")


def hfops(*args: str, stderr: int | None = subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*HFOPS, *args], stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=300, check=False
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(cli.time, "monotonic", fake)
    return fake


def test_progress_off_a_terminal_is_plain_lines_per_phase_and_period(clock: Clock) -> None:
    out = io.StringIO()
    progress = ProgressLine(out, every=10)
    progress(0, None, None)  # nothing to say yet: no stray "0"
    progress(0, 100, "run 1: preparing a and b")
    for done in range(1, 60):  # same phase, twice a second: held back
        clock.now += 0.5
        progress(done, 100, f"run 1: {done}/100 examples")
    clock.now += 1.5
    progress(60, 100, "run 1: 60/100 examples")  # 10.5 s after the last line: periodic
    clock.now += 1
    progress(100, 100, "run 1: computing metrics", force=True)
    progress.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "\033" not in out.getvalue()
    assert all(PROGRESS.match(line) for line in lines), lines
    assert [line.split(" (")[0].split("] ")[-1] for line in lines] == [
        "0/100 run 1: preparing a and b",
        "1/100 run 1: 1/100 examples",  # the new phase's first line
        "21/100 run 1: 21/100 examples",  # then one per 10 s
        "41/100 run 1: 41/100 examples",
        "60/100 run 1: 60/100 examples",
        "100/100 run 1: computing metrics",
    ]
    assert lines[4].endswith("(31s elapsed, ~21s left)")  # this phase: 59 examples in 30.5 s, 40 to go


def test_progress_close_prints_the_state_it_held_back(clock: Clock) -> None:
    out = io.StringIO()
    progress = ProgressLine(out, every=10)
    progress(1, None, "page 1: 100 models")
    clock.now += 1
    progress(2, None, "page 2: 200 models")
    progress.close()
    assert out.getvalue().splitlines() == [
        "page 1: 100 models (0s elapsed)",
        "page 2: 200 models (1s elapsed)",
    ]


def test_progress_on_a_terminal_rewrites_one_line(clock: Clock) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    progress = ProgressLine(out)
    for done in range(5):
        progress(done, 4, f"page {done}")
    progress.close()
    assert out.getvalue().count("\r\033[K") == 5 and out.getvalue().endswith("page 4 (0s elapsed)\n")


@pytest.fixture(scope="module")
def small_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 400 records of the shipped snapshot."""
    path = tmp_path_factory.mktemp("snap") / "models.jsonl"
    with open(HUB_SNAPSHOT, encoding="utf-8") as source:
        path.write_text("".join(line for _, line in zip(range(400), source, strict=False)), encoding="utf-8")
    return path


def test_sync_off_a_terminal_prints_plain_progress_lines(
    tmp_path: Path, db_path: str, small_snapshot: Path
) -> None:
    config = tmp_path / "hfops.toml"
    config.write_text("[hub]\npage_size = 50\n")
    proc = hfops("--config", str(config), "sync", "--snapshot", str(small_snapshot), "--db", db_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "\r" not in proc.stderr and "\033" not in proc.stderr
    assert len(lines) >= 2 and all(PROGRESS.match(line) for line in lines), lines
    assert "page 1: 50 models" in lines[0] and re.search(r"\] 400/400 done \(", lines[-1])
    assert "sync 1 (full) succeeded: 400 records" in proc.stdout
    quiet = hfops(
        "--config", str(config), "sync", "--snapshot", str(small_snapshot), "--db", db_path, "--quiet"
    )
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_sync_on_a_terminal_keeps_one_line(tmp_path: Path, db_path: str, small_snapshot: Path) -> None:
    config = tmp_path / "hfops.toml"
    config.write_text("[hub]\npage_size = 50\n")
    leader, follower = pty.openpty()
    try:
        proc = hfops("--config", str(config), "sync", "--snapshot", str(small_snapshot), "--db", db_path,
                     stderr=follower)  # fmt: skip
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other end is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0
    text = seen.decode()
    assert text.count("\r\x1b[K") >= 2 and text.rstrip("\r\n").count("\n") == 0  # one line, rewritten


@pytest.mark.xdist_group("minilm")
@pytest.mark.parametrize(
    ("model", "task", "dataset", "limit"),
    [(MINILM_ID, "retrieval", "ms_marco", "5"), (SMOLLM2_ID, "qa", "squad_v2", "2")],
    ids=["sentence-transformers", "llama.cpp"],
)
def test_a_clean_eval_prints_only_its_own_lines(
    db_path: str, model: str, task: str, dataset: str, limit: str
) -> None:
    """A fresh store: the model is loaded and run here (cache misses).

    The libraries' own stderr is left untouched.
    """
    proc = hfops(
        "eval", "--model", model, "--task", task, "--dataset", dataset, "--limit", limit, "--db", db_path
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and all(PROGRESS.match(line) for line in lines), lines
    assert not any(" · about " in line for line in lines), lines  # one estimate of the time left: the line's
    assert "computing metrics" in lines[-1]
    assert f"run 1 succeeded: {model} vs baseline:" in proc.stdout
    assert re.search(r"^cache: 0 hits, \d+ misses, [1-9]\d* model calls$", proc.stdout, re.M)  # the model ran
    quiet = hfops("eval", "--model", model, "--task", task, "--dataset", dataset, "--limit", limit, "--quiet",
                  "--db", db_path)  # fmt: skip
    assert quiet.returncode == 0 and quiet.stderr == "" and "run 2 succeeded" in quiet.stdout


def test_a_failed_eval_prints_its_error_once_without_the_job_log(tmp_path: Path, db_path: str) -> None:
    data = tmp_path / "data" / "ms_marco"
    data.mkdir(parents=True)
    (data / "ms_marco_v1.1_train_sample200.json").write_text("[\n  {oops}\n]\n")
    config = tmp_path / "hfops.toml"
    config.write_text(f'[eval]\ndata_dir = "{tmp_path / "data"}"\n')
    proc = hfops("--config", str(config), "eval", "--model", MINILM_ID, "--task", "retrieval", "--dataset",
                 "ms_marco", "--limit", "3", "--db", db_path)  # fmt: skip
    assert proc.returncode == 1
    assert "malformed dataset file: line 2" in proc.stdout and "run 1 failed" in proc.stdout
    others = [line for line in proc.stderr.splitlines() if not PROGRESS.match(line)]
    assert others == ["run 1 did not finish; resume it with: hfops eval --resume 1"]


def test_skipped_models_are_grouped_by_reason_without_naming_the_model_twice() -> None:
    skipped = [
        SkippedModel(model="a/x", reason="a/x is not available locally (not packaged)"),
        SkippedModel(model="b/y", reason="b/y: the GGUF runtime is not installed"),
        SkippedModel(model="c/z", reason="c/z is not available locally (not packaged)"),
        SkippedModel(model="d/w", reason="needs a licence review"),
    ]
    assert skipped_by_reason(skipped) == [
        {"reason": "not available locally (not packaged)", "count": 2, "models": ["a/x", "c/z"]},
        {"reason": "needs a licence review", "count": 1, "models": ["d/w"]},
        {"reason": "the GGUF runtime is not installed", "count": 1, "models": ["b/y"]},
    ]


@pytest.fixture(scope="module")
def synced_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The shipped snapshot synced once; the two runnable packaged models rejected.

    So there is nothing to run tonight.
    """
    store = tmp_path_factory.mktemp("store") / "hfops.db"
    assert hfops("sync", "--snapshot", str(HUB_SNAPSHOT), "--db", str(store), "--quiet").returncode == 0
    for model in (MINILM_ID, SMOLLM2_ID):
        done = hfops("status", "set", model, "rejected", "--reason", "not tonight", "--db", str(store))
        assert done.returncode == 0, done.stderr
    yield store


def test_nightly_ends_with_a_summary_of_the_skipped_models(tmp_path: Path, synced_store: Path) -> None:
    store = tmp_path / "hfops.db"
    shutil.copy(synced_store, store)
    full = json.loads(hfops("eval", "--nightly", "--json", "--db", str(store)).stdout)
    assert full["planned"] == 0 and len(full["skipped"]) > 100  # every candidate of a known task but the two
    proc = hfops("eval", "--nightly", "--db", str(store))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"nightly: 0 runs (0 finished, 0 failed); {len(full['skipped'])} models skipped " + (
        "(--json lists every one):"
    )
    groups = full["skipped_by_reason"]
    assert len(lines) == 1 + len(groups) and sum(g["count"] for g in groups) == len(full["skipped"])
    for line, group in zip(lines[1:], groups, strict=True):
        assert line.startswith(f"  {group['count']} skipped: {group['reason']} - ")
        named = line.rsplit(" - ", 1)[1]
        assert named.startswith(", ".join(group["models"][:3]))
        assert group["count"] <= 3 or named.endswith(f" and {group['count'] - 3} more")
        assert all(line.count(model) <= 1 for model in group["models"])  # each model named at most once
    assert all(PROGRESS.match(line) for line in proc.stderr.splitlines()), proc.stderr


def test_an_embedding_model_asked_for_qa_is_told_what_it_is(db_path: str) -> None:
    proc = hfops("eval", "--model", MINILM_ID, "--task", "qa", "--dataset", "squad_v2", "--db", db_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "HF cache" not in proc.stderr
    assert f"{MINILM_ID} is an embedding model" in proc.stderr and "not a QA model" in proc.stderr


HEAVY = ("torch", "transformers", "datasets", "streamlit", "sentence_transformers")


@pytest.mark.parametrize(
    "verb",
    [["candidates"], ["status", "show"], ["history", MINILM_ID], ["metrics", "--once"], ["--help"]],
    ids=lambda v: " ".join(v),
)
def test_read_only_verbs_import_no_model_or_ui_library(synced_store: Path, verb: list[str]) -> None:
    args = verb if verb == ["--help"] else [*verb, "--db", str(synced_store)]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hfops.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")
    }
    assert "hfops.cli" in imported and not {m for m in imported if m.split(".")[0] in HEAVY}


def test_each_verb_is_mapped_to_the_module_that_adds_it() -> None:
    """`hfops VERB` builds only VERB's module's parser: the map must say which module adds which verb."""
    import argparse
    import importlib

    added = {}
    for name in cli.COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers(dest="verb")
        importlib.import_module(name).register(sub, argparse.ArgumentParser(add_help=False))
        added.update(dict.fromkeys(sub.choices, name))
    assert cli.VERB_MODULES == added
    assert [
        cli._verb_of(a) for a in (["--db", "x", "status", "show"], ["-h", "eval"], ["--config=c", "eval"])
    ] == [
        "status",
        None,
        "eval",
    ]


def test_ctrl_c_cancels_the_run_at_its_next_batch_and_resume_finishes_it(
    tmp_path: Path, db_path: str
) -> None:
    """Ctrl-C on an in-process eval: the run stops at its next batch, cancelled (not left `running`)."""
    import signal
    import time

    from hfops import jobs
    from hfops.evals.queries import get_run
    from hfops.store import connect

    config = tmp_path / "hfops.toml"
    config.write_text("[eval]\nbatch_size = 1\n")  # one generated answer per batch
    args = ["--config", str(config), "eval", "--model", SMOLLM2_ID, "--task", "qa", "--dataset", "squad_v2",
            "--limit", "4", "--db", db_path]  # fmt: skip
    proc = subprocess.Popen([*HFOPS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while True:
        run = get_run(connect(db_path), 1) if Path(db_path).exists() else None
        if run is not None and (run.done or 0) >= 1:
            break
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "stopping at the next batch" in err and "resume with: hfops eval --resume 1" in err
    db = connect(db_path)
    run = get_run(db, 1)
    assert run is not None and run.status == "cancelled" and (run.done or 0) < 4
    assert [job.status for job in jobs.list_jobs(db)] == ["cancelled"]
    resumed = hfops("--config", str(config), "eval", "--resume", "1", "--quiet", "--db", db_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    finished = get_run(connect(db_path), 1)
    assert finished is not None and finished.status == "succeeded" and finished.done == 4
