"""The frozen validation protocol (astrasim/validation/protocol.py): validation/validate.yaml states
exactly its defaults, a harness change cannot pass without a protocol bump, every summary carries
the number, and `validate --help` states the true defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from astrasim.errors import UserError
from astrasim.validation.protocol import DEFAULTS, PROTOCOL, PROTOCOL_HASH, SETTINGS_KEYS, Settings, harness_hash
from astrasim.validation.settings import load_settings

YAML = Path(__file__).resolve().parents[1] / "validation" / "validate.yaml"


def test_the_yaml_states_every_default_of_the_protocol():
    raw = yaml.safe_load(YAML.read_text())["validate"]
    assert set(raw) == set(SETTINGS_KEYS)  # every setting written down, none unknown
    assert load_settings(YAML).fingerprint() == DEFAULTS.fingerprint()
    assert load_settings(YAML).model == DEFAULTS.model
    assert load_settings(YAML).differs_from_protocol() == []


def test_harness_changes_bump_the_protocol():
    """Change a default or a harness constant and this fails until PROTOCOL is bumped and
    PROTOCOL_HASH set to the new harness_hash()."""
    assert harness_hash() == PROTOCOL_HASH, (
        f"the validation harness changed (hash {harness_hash()}, protocol {PROTOCOL} has {PROTOCOL_HASH}): bump "
        f"PROTOCOL, store the new hash, state the new defaults in validation/validate.yaml"
    )


def test_the_hash_sees_settings_and_constants(monkeypatch):
    from astrasim.validation import corun, protocol

    base = harness_hash()
    monkeypatch.setattr(protocol, "DEFAULTS", Settings(max_repeats=41))
    assert harness_hash() != base
    monkeypatch.setattr(protocol, "DEFAULTS", Settings())
    assert harness_hash() == base
    monkeypatch.setattr(corun, "ROUNDS", corun.ROUNDS + 1)
    assert harness_hash() != base


def test_settings_refuse_unknown_fields_and_bad_types(tmp_path):
    with pytest.raises(ValidationError):
        Settings(colour="red")
    f = tmp_path / "v.yaml"
    f.write_text("validate:\n  repeats: many\n")
    with pytest.raises(UserError, match="repeats"):
        load_settings(f)
    f.write_text("validate:\n  max_repeats: 2\n  repeats: 3\n")
    with pytest.raises(UserError, match="max_repeats"):
        load_settings(f)
    narrowed = load_settings(YAML, hosts=[2], repeats=5)
    assert narrowed.differs_from_protocol() == ["hosts", "repeats"]


def test_help_states_the_true_defaults():
    from astrasim.cli import app

    out = CliRunner().invoke(app, ["validate", "--help"], env={"COLUMNS": "300"}).output
    assert "(default 2,4)" in out and "(default 20,100)" in out and "(default switch,shared)" in out
    assert (
        f"(default {DEFAULTS.repeats};" in out and f"up to {DEFAULTS.max_repeats} within {DEFAULTS.budget_s:g} s" in out
    )
    assert "astra G=32" in out


def test_every_summary_carries_the_protocol(tmp_path):
    from astrasim.validation.report import summarize, summary_markdown
    from tests.test_validate import _fake_results

    res = _fake_results()
    summary = summarize(res)
    assert (summary["protocol"] == PROTOCOL).all()
    md = summary_markdown(res, summary, {}, DEFAULTS, "astrasim validate", 1.0)
    assert f"Protocol: {PROTOCOL} (harness {PROTOCOL_HASH})." in md
    md = summary_markdown(res, summary, {}, Settings(hosts=[2]), "astrasim validate", 1.0)
    assert "differ from the protocol's defaults: hosts" in md
