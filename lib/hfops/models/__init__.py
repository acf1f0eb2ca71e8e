"""Model acquisition: the one resolver (packaged -> local folder -> HF cache -> Hub download -> Inference
API), download safety and size checks, evaluability facts, and the local GGUF runtime.

Entry points (see docs/models/acquisition.md):

- :func:`resolve` / :func:`pull` -> :class:`ResolvedModel` (``.record()`` is stored with a run;
  ``.check_capacity(settings)`` before loading);
- :func:`evaluability` (one model), :func:`check_models` / the ``models_check`` job (many, rate-limited),
  :func:`stored_evaluability` (what the pages show);
- :func:`list_local` (``hfops models``); :func:`add_local` / :func:`remove` store or forget a folder and
  delete cached copies; ``hfops models add`` / ``remove`` run :func:`hfops.models.registered.add_model` /
  :func:`~hfops.models.registered.remove_model`, which also make the folder a registry candidate (source
  ``local``, audited) and retire it (not imported here: it uses discovery's parser, which reads
  :mod:`hfops.models.packaged`);
- :class:`~hfops.models.gguf.GGUFGenerator` (``generate(messages, max_new_tokens)``) via
  :func:`gguf_generator`.
"""

from __future__ import annotations

from hfops.models.checks import Evaluability, check_models, evaluability, facet, local_evaluability
from hfops.models.checks import stored as stored_evaluability
from hfops.models.hub import RemotePlan, check_plan, remote_plan
from hfops.models.resolver import ResolvedModel, add_local, list_local, pull, remove, resolve
from hfops.models.settings import ModelsConfig, models_settings

__all__ = [
    "Evaluability",
    "ModelsConfig",
    "RemotePlan",
    "ResolvedModel",
    "add_local",
    "check_models",
    "check_plan",
    "evaluability",
    "facet",
    "list_local",
    "local_evaluability",
    "models_settings",
    "pull",
    "remote_plan",
    "remove",
    "resolve",
    "stored_evaluability",
]
