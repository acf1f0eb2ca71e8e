"""Docs as tests: every `hfops` command in a fenced shell block of README.md and docs/**/*.md is run.

How a documented command is turned into a run (the rules are the test's, the commands are the docs'):

- **Extraction.** Fences with no language or sh/bash/shell/console/zsh/crontab. A line may hold several
  commands (``cd x && .venv/bin/hfops sync``); every segment whose command word is ``hfops`` (or a path
  ending in ``/hfops``) counts, with its ``NAME=value`` environment prefix. ``# comments`` are dropped and
  ``\\`` continuations joined.
- **Synopses.** ``[--a X | --b Y]`` optional groups and ``a|b|c`` value choices: the command is *run* with the
  first alternative of every group and choice, and *every* alternative is parsed by hfops' own argument parser
  (a documented flag that does not exist fails the test).
- **Placeholders.** Upper-case words stand for values (table ``placeholders`` below: ``URL`` is the stand-in
  Hub, ``MODEL_ID`` a real candidate of the store, ``RUN_ID`` run 1, ``ORG/NAME`` a repo on the stand-in write
  Hub, ``P.jsonl``/``R.jsonl`` prediction/reference files...). ``--flag ...`` stands for the arguments of the
  previous command of the same verb in the same file. An unknown placeholder fails the test, naming it.
- **Small slices.** ``--limit N`` runs with at most ``DOC_LIMIT`` (5) examples, the default limit too; the
  prepared store has the nightly's runs done, so a documented ``hfops eval --nightly`` finds them.
- **Where it runs.** Each doc file gets a copy of a prepared temporary store (the embedded Hub snapshot
  synced, eval run 1 = the packaged MiniLM against BM25 on SQuAD v2, runs 2-8 API-backed against the
  inference stand-in) and an ``hfops.toml`` pointing ``[hub] endpoint`` at a stand-in Hub (the listing
  stand-in, or the write stand-in for ``hfops publish``) and ``[inference] base_url`` at the inference
  stand-in. No secret is set unless the doc's command sets one (``HUGGINGFACE_WRITE_TOKEN=... hfops publish``
  gets the write stand-in's token). The commands of one file run in order, in-process (``hfops.cli.main``),
  and must exit 0.
- **Shown, not run.** An ``hfops`` command in any other fence fails the test, unless the line before the fence
  is ``<!-- not run: why -->`` (operator-owned files, a second machine); the generated ``docs/cli.md`` is
  usage text, checked against the parser by ``tests/test_cli_reference.py``.
- **Commands that run until stopped** (``worker``, ``console``, ``serve``, ``metrics`` without a one-shot
  flag) are started as processes on a free port (``--port`` added or replaced), checked healthy
  (``/_stcore/health``, ``/healthz``, ``/metrics``; the worker: alive and announcing its store), then stopped
  with Ctrl-C (SIGINT).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hfops import discovery, registry, worker
from hfops.cli import build_parser, main
from hfops.config import load_settings
from hfops.evals import nightly, runs
from hfops.evals.backends import MINILM_ID
from hfops.paths import DATA_DIR, HUB_SNAPSHOT
from hfops.store import close_thread_connections, connect
from tests.browser import hfops_command
from tests.processes import free_port
from tests.standins.hub import HubStandIn, load_records
from tests.standins.hub_write import HubWriteStandIn
from tests.standins.inference import InferenceStandIn

pytestmark = pytest.mark.xdist_group("docs")  # one worker: the prepared store is built once
ROOT = Path(__file__).resolve().parent.parent
SHELL_FENCES = {"", "sh", "bash", "shell", "console", "zsh", "crontab", "cron"}
# `<!-- not run: why -->` on the line before a non-shell fence: its hfops commands are shown, not run.
NOT_RUN_MARKER = re.compile(r"^\s*<!--\s*not run:\s*\S.*-->\s*$")
WRITE_TOKEN = "hf_docs_write_token_for_the_standin"
API_KEY = "hf_docs_read_key_for_the_inference_standin"
# Verbs that serve until stopped: health path (None = the worker: alive and announcing its store).
LONG_RUNNING: dict[str, str | None] = {
    "worker": None,
    "console": "/_stcore/health",
    "serve": "/healthz",
    "metrics": "/metrics",
}
ONE_SHOT_FLAGS = {"metrics": {"--once", "--rules", "--dashboard"}}
PREPARED_RUNS = 8
DOC_LIMIT = 5  # examples per documented eval ([eval] default_limit and the cap on a documented --limit)
_BUILT: dict[str, Any] = {}


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


# --- extraction ---------------------------------------------------------------------------------------------


@dataclass
class DocCommand:
    """One documented command: where it is, its environment prefix and the command from ``hfops`` on."""

    file: str
    line: int
    env: dict[str, str]
    text: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


ENV_PREFIX = re.compile(r"^((?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)(\S+)(.*)$")
COMMENT = re.compile(r"(^|\s)#.*$")


def extract_commands(path: Path, text: str | None = None) -> list[DocCommand]:
    """The hfops commands in the shell-like fenced blocks of a Markdown file."""
    lines = (text if text is not None else path.read_text(encoding="utf-8")).splitlines()
    found: list[DocCommand] = []
    fence: str | None = None
    info = ""
    pending, start = "", 0
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        marker = re.match(r"^(```+|~~~+)\s*([\w+-]*)", stripped)
        if marker and (fence is None or stripped.startswith(fence)):
            if fence is None:
                fence, info = marker.group(1), marker.group(2).lower()
            else:
                fence = None
            continue
        if fence is None or info not in SHELL_FENCES:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line, pending = pending + stripped, ""
        line = COMMENT.sub("", line.removeprefix("$ ")).strip()
        for segment in re.split(r"\s*(?:&&|\|\||;)\s*", line):
            match = ENV_PREFIX.match(segment.strip())
            if not match or not (match.group(2) == "hfops" or match.group(2).endswith("/hfops")):
                continue
            env = dict(item.split("=", 1) for item in match.group(1).split())
            found.append(
                DocCommand(
                    path.relative_to(ROOT).as_posix() if path.is_absolute() else str(path),
                    start,
                    env,
                    " ".join(("hfops" + match.group(3)).split()),
                )
            )
    return found


GROUP = re.compile(r"\[([^\[\]]+)\]")


def _first_choices(text: str) -> str:
    return " ".join(token.split("|")[0] if "|" in token and token != "|" else token for token in text.split())


def synopsis_forms(text: str) -> tuple[str, list[str]]:
    """``(run form, parse-only variants)`` of a command that may be a synopsis."""
    groups = [[alt.strip() for alt in re.split(r"\s+\|\s+", g)] for g in GROUP.findall(text)]
    pieces = GROUP.split(text)  # text, group, text, group, ...
    primary = "".join(piece if i % 2 == 0 else groups[i // 2][0] for i, piece in enumerate(pieces))
    variants: list[str] = []
    bare = " ".join("".join(piece for i, piece in enumerate(pieces) if i % 2 == 0).split())
    for alternatives in groups:
        for alternative in alternatives:
            tokens = alternative.split()
            choice_sets = [token.split("|") if "|" in token else [token] for token in tokens]
            width = max(len(c) for c in choice_sets)
            for k in range(width):
                chosen = " ".join(c[min(k, len(c) - 1)] for c in choice_sets)
                variants.append(f"{_first_choices(bare)} {chosen}")
    for token in bare.split():
        if "|" in token and token != "|":
            for choice in token.split("|"):
                variants.append(_first_choices(bare.replace(token, choice)))
    return " ".join(_first_choices(primary).split()), variants


# --- placeholders -------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What a documented command runs against."""

    workdir: Path
    store: Path
    hub: HubStandIn
    write_hub: HubWriteStandIn
    inference: InferenceStandIn
    placeholders: dict[str, str] = field(default_factory=dict)
    previous: list[str] = field(default_factory=list)  # run forms so far (for `--flag ...`)
    outputs: int = 0


PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(?:/[A-Z][A-Z0-9_]*)?$")


def verb_of(argv: list[str]) -> str:
    args = list(argv)
    while args and args[0].startswith("-"):
        args = args[2:] if args[0] in ("--config",) else args[1:]
    return args[0] if args else ""


def fill(text: str, ctx: Context) -> str:
    """Placeholders replaced by real values (quoted for the shell)."""
    ctx.outputs += 1
    values = dict(ctx.placeholders)
    values["OUT_DIR"] = values["DIR"] = str(ctx.workdir / f"out-{ctx.outputs}")
    ellipsis = re.search(r"(--[\w-]+)\s+\.\.\.(?=\s|$)", text)
    if ellipsis:
        verb, flag = verb_of(shlex.split(text)[1:]), ellipsis.group(1)
        before = next(
            (
                c
                for c in reversed(ctx.previous)
                if verb_of(shlex.split(c)[1:]) == verb and re.search(rf"{flag}\s+(?!\.\.\.)\S", c)
            ),
            None,
        )
        assert before, (
            f"`{ellipsis.group(0)}` but no earlier `hfops {verb} {flag} VALUE` command in this file"
        )
        text = text.replace(ellipsis.group(0), before.split(f" {verb} ", 1)[1])
    out = []
    for token in shlex.split(text):
        for key in sorted(values, key=len, reverse=True):
            token = re.sub(rf"(?<![\w/.-]){re.escape(key)}(?![\w/.-])", values[key], token)
        out.append(token)
    unknown = [t for t in out[1:] if PLACEHOLDER.match(t)]
    assert not unknown, f"unknown placeholder(s) {unknown}: add them to the docs test's placeholder table"
    return shlex.join(out)


def write_config(ctx: Context, verb: str) -> Path:
    endpoint = ctx.write_hub.url if verb == "publish" else ctx.hub.url
    path = ctx.workdir / "hfops.toml"
    path.write_text(
        f'[hub]\nendpoint = "{endpoint}"\n\n[inference]\nbase_url = "{ctx.inference.url}"\n\n'
        f'[store]\npath = "{ctx.store}"\n\n'
        # Documented commands run for real, on small slices: a nightly over the embedded default's runnable
        # candidates (packaged MiniLM and SmolLM2 on both datasets) would otherwise take many minutes.
        f"[eval]\ndefault_limit = {DOC_LIMIT}\nstarter_runs = false\n",
        encoding="utf-8",
    )
    return path


def command_env(command: DocCommand) -> dict[str, str]:
    env = dict(command.env)
    if "HUGGINGFACE_WRITE_TOKEN" in env:
        env["HUGGINGFACE_WRITE_TOKEN"] = WRITE_TOKEN
    if "HUGGINGFACE_API_KEY" in env:
        env["HUGGINGFACE_API_KEY"] = API_KEY
    return env


# --- running ------------------------------------------------------------------------------------------------


def with_free_port(argv: list[str]) -> list[str]:
    """``--port`` set to a free port (added, or its documented value replaced): parallel tests never clash."""
    port = str(free_port())
    if "--port" in argv:
        i = argv.index("--port")
        return [*argv[: i + 1], port, *argv[i + 2 :]]
    return [*argv, "--port", port]


def run_long(argv: list[str], command: DocCommand, ctx: Context) -> None:
    """Start a serving command, check it is healthy, stop it with SIGINT."""
    verb = verb_of(argv)
    health = LONG_RUNNING[verb]
    if health is not None:
        argv = with_free_port(argv)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HFOPS_")
        and k not in ("HUGGINGFACE_API_KEY", "HUGGINGFACE_WRITE_TOKEN", "HF_TOKEN", "SPACE_ID")
    }
    env.update(command_env(command), HF_HUB_DISABLE_TELEMETRY="1", PYTHONUNBUFFERED="1")
    log_path = ctx.workdir / f"{verb}-{ctx.outputs}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*hfops_command(), *argv],
            cwd=ctx.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        healthy = False
        while time.monotonic() < deadline and not healthy:
            assert process.poll() is None, (
                f"{command.where}: exited with {process.returncode}:\n{log_path.read_text()}"
            )
            if health is None:
                healthy = "worker on" in log_path.read_text(errors="replace")
            else:
                port = argv[argv.index("--port") + 1]
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=2) as response:
                        healthy = response.status == 200
                except OSError:
                    pass
            time.sleep(0.3)
        assert healthy, f"{command.where}: not healthy after 90 s:\n{log_path.read_text(errors='replace')}"
        time.sleep(1.0)
        assert process.poll() is None, f"{command.where}: stopped by itself:\n{log_path.read_text()}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C: hfops console stops its children itself
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def capped_limit(argv: list[str]) -> list[str]:
    """``--limit N`` at most :data:`DOC_LIMIT` examples: a documented eval runs for real, on a small slice."""
    if "--limit" not in argv:
        return argv
    i = argv.index("--limit")
    value = argv[i + 1] if i + 1 < len(argv) else ""
    if not value.isdigit() or int(value) <= DOC_LIMIT:
        return argv
    return [*argv[: i + 1], str(DOC_LIMIT), *argv[i + 2 :]]


def run_documented(
    command: DocCommand, ctx: Context, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    primary, variants = synopsis_forms(command.text)
    parser = build_parser()
    for variant in variants:
        try:
            parser.parse_args(shlex.split(fill(variant, ctx))[1:])
        except SystemExit:
            pytest.fail(f"{command.where}: the documented form `{variant}` is not accepted by hfops")
    filled = fill(primary, ctx)
    argv = capped_limit(shlex.split(filled)[1:])
    verb = verb_of(argv)
    ctx.previous.append(primary)
    write_config(ctx, verb)
    one_shot = bool(ONE_SHOT_FLAGS.get(verb, set()) & set(argv))
    if verb in LONG_RUNNING and not one_shot:
        run_long(argv, command, ctx)
        return
    commits_before = sum(len(r.commits) for r in ctx.write_hub.repos.values())
    with monkeypatch.context() as mp:
        for name, value in command_env(command).items():
            mp.setenv(name, value)
        code = main(argv)
        close_thread_connections()
    captured = capsys.readouterr()
    assert code == 0, (
        f"{command.where}\n  ran: {filled}\n  exit {code}\n{captured.out[-3000:]}\n{captured.err[-3000:]}"
    )
    if verb == "publish" and "HUGGINGFACE_WRITE_TOKEN" in command.env and "--dry-run" not in argv:
        assert sum(len(r.commits) for r in ctx.write_hub.repos.values()) == commits_before + 1, command.where
        assert WRITE_TOKEN not in captured.out + captured.err


# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[HubStandIn, HubWriteStandIn, InferenceStandIn]]:
    with (
        HubStandIn(load_records(str(HUB_SNAPSHOT))) as hub,
        HubWriteStandIn(WRITE_TOKEN) as write_hub,
        InferenceStandIn() as inference,
    ):
        yield hub, write_hub, inference


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory, servers: tuple[Any, Any, InferenceStandIn]
) -> dict[str, Any]:
    """A store with history: the embedded snapshot, run 1 (MiniLM vs BM25) and runs 2-8.

    Runs 2-8 are API-backed, served by the inference stand-in.
    """
    if "prepared" in _BUILT:  # pytest-xdist may tear module fixtures down mid-module: build once anyway
        return _BUILT["prepared"]
    folder = tmp_path_factory.mktemp("docs-store")
    store = folder / "hfops.db"
    config = folder / "hfops.toml"
    config.write_text(f'[inference]\nbase_url = "{servers[2].url}"\n')
    settings = load_settings(config, **{"store.path": str(store)})
    discovery.sync_snapshot(str(store), HUB_SNAPSHOT, settings)
    made = runs.submit_run(str(store), MINILM_ID, "retrieval", "squad_v2", 20, settings, enqueue=False)
    worker.execute_job(str(store), made["job_id"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUGGINGFACE_API_KEY", API_KEY)
        for i in range(2, PREPARED_RUNS + 1):
            dataset = ("squad_v2", "ms_marco")[i % 2]
            made = runs.submit_run(
                str(store),
                f"docs-org/retriever-{i}",
                "retrieval",
                dataset,
                10,
                settings,
                enqueue=False,
                config_path=str(config),
            )
            worker.execute_job(str(store), made["job_id"])
    db = connect(store)
    statuses = [r[0] for r in db.execute("SELECT status FROM eval_runs ORDER BY id")]
    assert statuses == ["succeeded"] * PREPARED_RUNS
    # The nightly's work done once here (packaged MiniLM and SmolLM2 on both datasets, DOC_LIMIT examples):
    # each doc file's `hfops eval --nightly` runs on a copy and finds it done instead of repeating it.
    settings.eval.default_limit = DOC_LIMIT
    summary = nightly.nightly(str(store), settings)
    assert summary["planned"] and not [r for r in summary["runs"] if r.get("error")], summary
    # MODEL_ID: the candidate of run 1 (RUN_ID), so that `status set MODEL_ID ... --evidence eval_run:RUN_ID`
    # cites a run of that model
    first_run = db.execute("SELECT model_id FROM eval_runs WHERE id = 1").fetchone()[0]
    if registry.get_model(db, first_run)["candidate"]["status"] != "candidate":  # the runs moved it on
        registry.set_status(db, first_run, "candidate", "docs test: the documented walk-through starts here")
    close_thread_connections()
    squad = [json.loads(line) for line in (DATA_DIR / "squad_v2" / "dev-v2.0.sample.flat.jsonl").open()][:20]
    predictions, references = folder / "predictions.jsonl", folder / "references.jsonl"
    predictions.write_text(
        "".join(
            json.dumps({"id": r["id"], "prediction_text": (r["answers"]["text"] or [""])[0]}) + "\n"
            for r in squad
        )
    )
    references.write_text("".join(json.dumps({"id": r["id"], "answers": r["answers"]}) + "\n" for r in squad))
    _BUILT["prepared"] = {
        "store": store,
        "model_id": first_run,
        "predictions": predictions,
        "references": references,
    }
    return _BUILT["prepared"]


def placeholders(prepared: dict[str, Any], hub: HubStandIn) -> dict[str, str]:
    return {
        "URL": hub.url,
        "FILE": str(HUB_SNAPSHOT),
        "MODEL_ID": prepared["model_id"],
        "MODEL": prepared["model_id"],
        "ID": prepared["model_id"],
        "STATUS": "shadow",
        "S": "candidate",
        "TEXT": "docs test: running the documented command",
        "RUN_ID": "1",
        "RUN": "1",
        "N": "5",
        "ORG/NAME": "docs-org/hfops-evals",
        "P.jsonl": str(prepared["predictions"]),
        "R.jsonl": str(prepared["references"]),
    }


# --- tests --------------------------------------------------------------------------------------------------


DOCUMENTED = [(path, extract_commands(path)) for path in doc_files()]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize(
    "path", [p for p, found in DOCUMENTED if found], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_every_documented_command_runs(
    path: Path,
    prepared: dict[str, Any],
    servers: tuple[Any, Any, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub, write_hub, inference = servers
    store = tmp_path / "var" / "hfops.db"
    store.parent.mkdir()
    with sqlite3.connect(prepared["store"]) as src, sqlite3.connect(store) as dst:
        src.backup(dst)  # a consistent copy, WAL included (a file copy can miss commits still in the WAL)
    ctx = Context(tmp_path, store, hub, write_hub, inference, placeholders(prepared, hub))
    for command in extract_commands(path):
        run_documented(command, ctx, monkeypatch, capsys)


def test_the_docs_have_commands_and_all_are_found() -> None:
    by_file = {path.relative_to(ROOT).as_posix(): [c.text for c in found] for path, found in DOCUMENTED}
    assert "hfops status show" in by_file["README.md"]
    assert "hfops console [--demo]" in by_file["README.md"]
    assert "hfops publish --run RUN_ID --repo ORG/NAME --dry-run" in by_file["docs/models/auto_upgrade.md"]
    assert "hfops sync --quiet" in by_file["docs/models/auto_upgrade.md"]  # from the crontab line
    assert "hfops space build dist/space" in by_file["docs/models/hf_spaces_demo.md"]
    assert by_file["docs/models/registry_contract.md"]
    # No hfops command hides in a fence that is not run (```text, ```python...), unless the fence says why
    # (NOT_RUN_MARKER on the line before it). docs/cli.md is generated usage, checked by test_cli_reference.
    hidden = []
    for path, _ in DOCUMENTED:
        if path.relative_to(ROOT).as_posix() == "docs/cli.md":
            continue
        info, excused, previous = None, False, ""
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            marker = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
            if marker:
                opening = info is None
                info = marker.group(2).lower() if opening else None
                excused = opening and NOT_RUN_MARKER.match(previous) is not None
                previous = line
                continue
            if line.strip():
                previous = line
            if (
                info is not None
                and info not in SHELL_FENCES
                and not excused
                and re.search(r"(^|[\s;&/$])hfops\s+[a-z]", line)
            ):
                hidden.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert hidden == []


def test_extraction_and_synopsis_rules() -> None:
    doc = "\n".join(
        [
            "Prose mentioning hfops sync is not a command.",
            "```sh",
            "$ hfops sync [--endpoint URL | --snapshot FILE] [--mode auto|full|incremental]   # synopsis",
            "HUGGINGFACE_WRITE_TOKEN=hf_... hfops publish --run 1 \\",
            "    --repo ORG/NAME",
            "```",
            "```crontab",
            "0 2 * * *  cd /srv/hfops && .venv/bin/hfops eval --nightly --quiet",
            "```",
            "```toml",
            'hfops = "not a command"',
            "```",
        ]
    )
    found = extract_commands(Path("x.md"), doc)
    assert [(c.text, c.env, c.line) for c in found] == [
        ("hfops sync [--endpoint URL | --snapshot FILE] [--mode auto|full|incremental]", {}, 3),
        ("hfops publish --run 1 --repo ORG/NAME", {"HUGGINGFACE_WRITE_TOKEN": "hf_..."}, 4),
        ("hfops eval --nightly --quiet", {}, 8),
    ]
    primary, variants = synopsis_forms(found[0].text)
    assert primary == "hfops sync --endpoint URL --mode auto"
    assert sorted(variants) == sorted(
        [
            "hfops sync --endpoint URL",
            "hfops sync --snapshot FILE",
            "hfops sync --mode auto",
            "hfops sync --mode full",
            "hfops sync --mode incremental",
        ]
    )
