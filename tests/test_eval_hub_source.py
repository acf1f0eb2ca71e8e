"""``[eval] source = "hub"``: the real ``datasets`` streaming path against a local stand-in Hub.

``HF_ENDPOINT`` is read once when huggingface_hub / datasets are imported, so each load runs in a child
process pointed at the stand-in (fresh ``HF_HOME``, no offline switches: they would block 127.0.0.1 too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hfops.evals.data import sample_ids
from tests.standins.hub_datasets import HubDatasetsStandIn, ms_marco_rows, squad_rows

ROOT = Path(__file__).resolve().parent.parent
MAX_ROWS = 40
LIMIT = 5

CHILD = r"""
import json, sys
from hfops.config import load_settings
from hfops.evals.data import DatasetError, load_eval_set

import os
max_rows, limit, wanted = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
settings = load_settings(None, **{"eval.source": "hub", "eval.hub_max_rows": max_rows})
out = {}
ledger_db = os.environ.get("LEDGER_DB")
if ledger_db:  # the free-tier ledger on this process's session, as every hfops entry point installs it
    from hfops import ledger
    ledger.install(ledger_db, load_settings(None, **{"store.path": ledger_db}))
for item in wanted:
    dataset, task = item.split(":")
    try:
        s = load_eval_set(settings, dataset, task, limit=limit)
    except DatasetError as exc:
        out[item] = {"error": str(exc)}
        continue
    out[item] = {"source": s.source, "version": s.version, "location": s.location, "available": s.available,
                 "examples": [{"id": e.id, "query": e.query, "answers": e.answers, "relevant": e.relevant}
                              for e in s.examples],
                 "corpus": sorted(s.corpus)}
if ledger_db:
    from hfops.ledger import hub_window
    from hfops.store import get_db
    found = hub_window.buckets(get_db(ledger_db))
    out["buckets"] = {b.resource: [b.responses, b.remaining, b.quota] for b in found}
print(json.dumps(out))
"""


@pytest.fixture
def hub() -> Iterator[HubDatasetsStandIn]:
    with HubDatasetsStandIn() as server:
        yield server


def load_in_child(
    hub: HubDatasetsStandIn, home: Path, *wanted: str, ledger_db: str | None = None
) -> dict[str, Any]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "HF_DATASETS_OFFLINE",
            "HF_HUB_OFFLINE",
            "HF_DATASETS_CACHE",
            "HF_HUB_CACHE",
            "HUGGINGFACE_HUB_CACHE",
            "HF_TOKEN",
            "HF_TOKEN_PATH",
        )
    }
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HOME=str(home),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "lib"), env.get("PYTHONPATH")])),
    )
    if ledger_db:
        env["LEDGER_DB"] = ledger_db
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(MAX_ROWS), str(LIMIT), *wanted],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_hub_source_streams_from_the_hub(hub: HubDatasetsStandIn, tmp_path: Path) -> None:
    out = load_in_child(hub, tmp_path / "hf-home", "squad_v2:qa", "ms_marco:retrieval")

    # SQuAD v2: the first MAX_ROWS rows of the served validation split, sampled as the local path would.
    squad = out["squad_v2:qa"]
    served = squad_rows()[:MAX_ROWS]
    by_id = {r["id"]: r for r in served}
    assert squad["source"] == "hub" and squad["version"].startswith("hub:")
    assert squad["location"] == f"hf://datasets/rajpurkar/squad_v2 validation[:{MAX_ROWS}]"
    assert squad["available"] == MAX_ROWS
    assert [e["id"] for e in squad["examples"]] == [
        i for i in by_id if i in set(sample_ids("squad_v2", list(by_id), LIMIT))
    ]
    for example in squad["examples"]:
        assert example["query"] == by_id[example["id"]]["question"].strip()
        assert example["answers"] == by_id[example["id"]]["answers"]["text"]

    # MS MARCO: config v1.1, split validation (the stand-in's v2.1 and train files hold other rows).
    marco = out["ms_marco:retrieval"]
    rows = ms_marco_rows()[:MAX_ROWS]
    usable = {str(r["query_id"]): r for r in rows if any(r["passages"]["is_selected"])}
    assert marco["version"].startswith("hub:") and marco["version"] != squad["version"]
    assert marco["location"] == f"hf://datasets/microsoft/ms_marco (v1.1) validation[:{MAX_ROWS}]"
    assert marco["available"] == len(usable)
    assert {e["id"] for e in marco["examples"]} == set(sample_ids("ms_marco", list(usable), LIMIT))
    for example in marco["examples"]:
        row = usable[example["id"]]
        assert example["query"] == row["query"].strip()
        assert example["relevant"] == [
            f"{example['id']}#{j}" for j, sel in enumerate(row["passages"]["is_selected"]) if sel
        ]
        assert set(example["relevant"]) <= set(marco["corpus"])

    # The data came from the stand-in: card, repo info, listing, and the data files through /resolve/.
    for repo, data_file in (
        ("rajpurkar/squad_v2", "squad_v2/validation.jsonl"),
        ("microsoft/ms_marco", "v1.1/validation.jsonl"),
    ):
        log = hub.requests_for(repo)
        assert any(line.endswith("/resolve/main/README.md") for line in log), log
        assert any(line.startswith(f"GET /api/datasets/{repo}/revision/") for line in log), log
        assert any(line.endswith(f"/{data_file}") for line in hub.file_downloads(repo)), log
    assert not any("v2.1/" in line for line in hub.log)


def test_the_datasets_clients_responses_count_in_the_free_tier_ledger(
    hub: HubDatasetsStandIn, tmp_path: Path
) -> None:
    """`datasets` streams through huggingface_hub's session: its Hub responses are recorded per bucket."""
    hub.ratelimit = (1000, 300)
    out = load_in_child(hub, tmp_path / "hf-home", "squad_v2:qa", ledger_db=str(tmp_path / "hfops.db"))
    assert "error" not in out["squad_v2:qa"]
    buckets = out["buckets"]
    assert set(buckets) == {"api", "resolvers"}
    served_api = sum(1 for line in hub.log if " /api/" in line)
    assert buckets["api"][0] == served_api > 0 and buckets["api"][1:] == [999, 1000]
    assert buckets["resolvers"][0] > 0


def test_hub_source_missing_repo_is_a_clear_error(hub: HubDatasetsStandIn, tmp_path: Path) -> None:
    hub.missing_repos.add("rajpurkar/squad_v2")
    out = load_in_child(hub, tmp_path / "hf-home", "squad_v2:qa")
    message = out["squad_v2:qa"]["error"]
    assert message.startswith(
        f"hf://datasets/rajpurkar/squad_v2 validation[:{MAX_ROWS}]: could not load from the Hub"
    )
    assert "rajpurkar/squad_v2" in message and "doesn't exist on the Hub" in message
    assert "Traceback" not in message
    assert hub.requests_for("rajpurkar/squad_v2")  # it did ask the stand-in
