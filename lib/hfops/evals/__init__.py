"""Shadow evaluations: datasets, exact metrics, model backends, an inference cache, eval runs as jobs.

Modules (import the one you need; nothing heavy is imported here, and no model loads at import):

- :mod:`hfops.evals.scoring`: SQuAD v2 / ROUGE-L / BLEU / retrieval metrics and ``hfops score`` file readers.
- :mod:`hfops.evals.data`: SQuAD v2 and MS MARCO v1.1 loaded through ``datasets`` (offline samples or the Hub).
- :mod:`hfops.evals.cache`: the SQLite inference/embedding cache.
- :mod:`hfops.evals.backends`: the systems that can be evaluated (local, cached, HF Inference API, baselines).
- :mod:`hfops.evals.stats`: bootstrap confidence intervals and the recommendation rule.
- :mod:`hfops.evals.runs`: shadow runs as jobs (resumable), nightly planning, queries for the console.
"""

TASKS = ("retrieval", "qa")
DATASETS = ("squad_v2", "ms_marco")
