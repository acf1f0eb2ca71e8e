"""The candidate rule, licence/library/safetensors facts, quantization facet and quality score."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from hfops.config import DiscoveryConfig
from hfops.discovery import SCORE_WEIGHTS, parse_record, quality_score, rule_failures
from hfops.paths import HUB_SNAPSHOT

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def record(**fields: object) -> dict:
    base = {
        "id": "org/model",
        "tags": ["transformers", "safetensors", "license:apache-2.0"],
        "pipeline_tag": "text-generation",
        "library_name": "transformers",
        "downloads": 5000,
        "likes": 50,
        "lastModified": "2026-10-01T00:00:00.000Z",
    }
    base.update(fields)
    return base


def facts(**fields: object):
    return parse_record(record(**fields))[1]


def test_default_rule_accepts_a_complete_record() -> None:
    assert rule_failures(facts(), DiscoveryConfig()) == []


@pytest.mark.parametrize(
    ("fields", "clause"),
    [
        ({"pipeline_tag": "fill-mask"}, "pipeline tag"),
        ({"tags": ["transformers", "safetensors", "license:cc-by-nc-4.0"]}, "licence cc-by-nc-4.0"),
        ({"tags": ["transformers", "safetensors"]}, "licence none"),
        ({"tags": ["safetensors", "license:mit"], "library_name": "diffusers"}, "library diffusers"),
        ({"tags": ["transformers", "license:mit"]}, "no safetensors"),
        ({"downloads": 999}, "downloads 999 < 1000"),
        ({"likes": 9}, "likes 9 < 10"),
        ({"downloads": None, "likes": None}, "downloads 0 < 1000"),
    ],
)
def test_each_rule_clause_rejects(fields: dict, clause: str) -> None:
    failures = rule_failures(facts(**fields), DiscoveryConfig())
    assert any(clause in f for f in failures), failures


def test_licence_from_card_data_when_no_tag() -> None:
    f = facts(tags=["transformers", "safetensors"], cardData={"license": "MIT"})
    assert f.license == "mit"
    assert rule_failures(f, DiscoveryConfig()) == []


def test_openrail_family_is_allowed_and_flagged_use_restricted() -> None:
    f = facts(tags=["transformers", "safetensors", "license:bigcode-openrail-m"])
    assert rule_failures(f, DiscoveryConfig()) == []
    assert f.use_restricted
    assert not facts().use_restricted


def test_bsd_3_clause_allowed() -> None:
    assert (
        rule_failures(facts(tags=["transformers", "safetensors", "license:bsd-3-clause"]), DiscoveryConfig())
        == []
    )


def test_library_via_library_name_sentence_transformers() -> None:
    f = facts(
        tags=["safetensors", "license:mit"],
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
    )
    assert rule_failures(f, DiscoveryConfig()) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"tags": ["transformers", "license:mit"], "safetensors": {"parameters": {"F16": 10}, "total": 10}},
        {"tags": ["transformers", "license:mit"], "siblings": [{"rfilename": "model-00001.safetensors"}]},
    ],
)
def test_safetensors_from_expand_field_or_sibling(fields: dict) -> None:
    assert facts(**fields).safetensors


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tags": ["transformers", "gptq", "4-bit"]}, ["bnb-4bit", "gptq"]),
        ({"id": "TheBloke/Llama-2-7B-AWQ"}, ["awq"]),
        ({"siblings": [{"rfilename": "model.Q4_K_M.gguf"}]}, ["gguf"]),
        (
            {"config": {"quantization_config": {"quant_method": "bitsandbytes", "load_in_8bit": True}}},
            ["bnb-8bit"],
        ),
        ({"config": {"quantization_config": {"quant_method": "compressed-tensors"}}}, ["compressed-tensors"]),
        ({"config": {"quantization_config": {"quant_method": "fp8"}}}, ["fp8"]),
        ({}, []),
    ],
)
def test_quantization_detected_from_tags_config_and_files(fields: dict, expected: list[str]) -> None:
    assert facts(**fields).quantization == expected


def test_score_in_unit_interval_breakdown_sums_and_no_term_dominates() -> None:
    score, breakdown = quality_score(facts(downloads=10**9, likes=10**6), NOW)
    assert 0 <= score <= 1
    assert abs(sum(t["contribution"] for t in breakdown.values()) - score) < 1e-3
    assert set(breakdown) == {"downloads", "likes", "recency", "license"}
    assert max(SCORE_WEIGHTS.values()) <= 0.3
    assert all(t["contribution"] <= 0.3 + 1e-9 for t in breakdown.values())


def test_score_grows_with_downloads_likes_and_recency() -> None:
    low, _ = quality_score(facts(downloads=1000, likes=10), NOW)
    more_downloads, _ = quality_score(facts(downloads=1_000_000, likes=10), NOW)
    more_likes, _ = quality_score(facts(downloads=1000, likes=5000), NOW)
    older, _ = quality_score(facts(downloads=1000, likes=10, lastModified="2022-01-01T00:00:00.000Z"), NOW)
    assert more_downloads > low and more_likes > low and older < low


def test_rail_licence_scores_lower_openness_than_apache() -> None:
    _, open_b = quality_score(facts(), NOW)
    _, rail_b = quality_score(facts(tags=["transformers", "safetensors", "license:openrail"]), NOW)
    assert rail_b["license"]["value"] < open_b["license"]["value"]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"modelId": "x/no-id"}, "missing id"),
        ({"id": "x/y", "lastModified": "2024-01-01"}, "bad value"),
        ({"id": "x/y", "createdAt": "2024-01-01T00:00:00+00:00"}, "bad value"),
        ({"id": "x/y", "downloads": "many"}, "wrong type"),
        ({"id": "x/y", "tags": "transformers"}, "wrong type"),
        ({"id": "x/y", "siblings": [{"name": "a"}]}, "missing field"),
        (["not", "a", "dict"], "not an object"),
    ],
)
def test_malformed_records_raise_value_error_naming_the_problem(bad: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_record(bad)


def test_every_shipped_snapshot_record_parses() -> None:
    count = 0
    with open(HUB_SNAPSHOT, encoding="utf-8") as fh:
        for line in fh:
            parse_record(json.loads(line))
            count += 1
    assert count > 8000
