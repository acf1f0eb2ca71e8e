"""Shadow evaluations: datasets, exact metrics, model backends, an inference cache, eval runs as jobs.

Modules (import the one you need; nothing heavy is imported here, and no model loads at import):

- :mod:`hfops.evals.tasks`: the task table (tasks, datasets, metrics, scorers, prompt styles, baselines).
- :mod:`hfops.evals.scoring`: SQuAD v2 / ROUGE-L / BLEU / retrieval metrics and ``hfops score`` file readers.
- :mod:`hfops.evals.data`: the built-in datasets loaded through ``datasets`` (offline samples or the Hub).
- :mod:`hfops.evals.cache`: the SQLite inference/embedding cache.
- :mod:`hfops.evals.backends`: the systems that can be evaluated (local, cached, HF Inference API, baselines).
- :mod:`hfops.evals.stats`: bootstrap confidence intervals and the recommendation rule.
- :mod:`hfops.evals.records`: the typed records queries return (EvalRun, EvalExample, ...).
- :mod:`hfops.evals.runs`: shadow runs as jobs (resumable); :mod:`hfops.evals.nightly`: the nightly batch;
  :mod:`hfops.evals.queries`: reads for the console and the CLI.

Pure parts (tasks, scoring, stats) import neither the store nor jobs.
"""

from hfops.evals.tasks import DATASET_NAMES, TASK_NAMES

TASKS = TASK_NAMES
DATASETS = DATASET_NAMES
