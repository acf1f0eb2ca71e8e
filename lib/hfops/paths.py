"""Where the repository's shipped files live (data/, docs/), independent of the working directory."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
HUB_SNAPSHOT = DATA_DIR / "hub" / "models_snapshot.jsonl"
