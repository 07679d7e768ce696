"""Releases: content-addressed, idempotent, verified on every load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.adapters.memory import MemoryStore
from controller.bundle.models import load_bundle
from controller.cli import app
from controller.core.release import create_release, list_releases, load_release, model_choice, resolve_digest
from controller.errors import InvalidInput
from controller.service.compose import make_model_adapter
from tests.conftest import edit_yaml

runner = CliRunner()


def test_same_content_same_digest_and_idempotent(project: Path) -> None:
    store = MemoryStore()
    bundle = load_bundle(project)
    first, created = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    again, created_again = create_release(store, load_bundle(project), model_choice(bundle.workflow, "local"))
    assert (first, created, created_again) == (again, True, False)
    assert list_releases(store) == [first]
    release = load_release(store, first)
    assert release.model.adapter == "local"
    assert {d.source_id for d in release.corpus} == {d.source_id for d in bundle.corpus}
    assert release.prompt.text == bundle.prompt.text


@pytest.mark.parametrize(
    "change",
    [
        lambda b: (b / "corpus/pto-policy.md").write_text("# PTO\nUnlimited.\n"),
        lambda b: (b / "prompts/answer.v1.md").write_text((b / "prompts/answer.v1.md").read_text() + "\nBe brief.\n"),
        lambda b: edit_yaml(b / "golden.yaml", lambda d: d["cases"].pop()),
        lambda b: edit_yaml(b / "workflow.yaml", lambda d: d["data_boundaries"]["forbidden"][1].update(action="block")),
    ],
    ids=["corpus", "prompt", "golden", "workflow"],
)
def test_any_behaviour_change_is_a_new_release(project: Path, change) -> None:
    store = MemoryStore()
    before, _ = create_release(store, load_bundle(project), model_choice(load_bundle(project).workflow, "local"))
    change(project)
    after, _ = create_release(store, load_bundle(project), model_choice(load_bundle(project).workflow, "local"))
    assert before != after


def test_the_model_choice_is_part_of_the_release(project: Path) -> None:
    store = MemoryStore()
    bundle = load_bundle(project)
    local, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    bedrock, _ = create_release(store, bundle, model_choice(bundle.workflow))
    assert local != bedrock
    manifest = load_release(store, bedrock).manifest["model"]
    assert manifest == {
        "adapter": "bedrock",
        "id": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "region": "eu-west-1",
        "guardrail": {"id": "arn:aws:bedrock:eu-west-1:123456789012:guardrail/northwinddocsqa1", "version": "1"},
    }


def test_bedrock_adapter_carries_the_guardrail(project: Path) -> None:
    store = MemoryStore()
    bundle = load_bundle(project)
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow))
    adapter = make_model_adapter(load_release(store, digest), None)
    assert "guardrail/northwinddocsqa1" in json.dumps(adapter.converse_arguments(_request()), default=str)


def _request():
    from controller.models.base import ModelRequest

    return ModelRequest(model_id="anthropic.claude-3-5-sonnet-20240620-v1:0", system="", prompt="hi")


def test_an_unsanctioned_adapter_is_refused(project: Path) -> None:
    with pytest.raises(InvalidInput, match="sanctioned endpoint"):
        model_choice(load_bundle(project).workflow, "openai-compatible")


@pytest.mark.parametrize("target", ["manifest.json", "files/workflow.yaml", "files/corpus/vpn-access.md"])
def test_edited_or_missing_release_objects_are_refused(project: Path, target: str) -> None:
    store = MemoryStore()
    bundle = load_bundle(project)
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    key = f"releases/{digest}/{target}"
    tampered = MemoryStore()
    for k in store.list(""):
        data = store.get(k).data
        tampered.create(k, data + b" " if k == key else data)
    with pytest.raises(InvalidInput, match=digest[:12]):
        load_release(tampered, digest)


def test_digest_prefixes(project: Path) -> None:
    store = MemoryStore()
    bundle = load_bundle(project)
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    assert resolve_digest(store, digest[:10]) == digest
    with pytest.raises(InvalidInput):
        resolve_digest(store, digest[:4])
    with pytest.raises(InvalidInput):
        resolve_digest(store, "0" * 10)


def test_release_cli_create_show_list(project: Path) -> None:
    created = runner.invoke(app, ["--state", "st", "release", "create", "--adapter", "local", "--json"])
    assert created.exit_code == 0, created.output
    digest = json.loads(created.stdout)["digest"]
    shown = runner.invoke(app, ["--state", "st", "release", "show", "--adapter", "local", "--json"])
    assert json.loads(shown.stdout)["digest"] == digest
    listed = runner.invoke(app, ["--state", "st", "release", "list", "--json"])
    assert json.loads(listed.stdout)["releases"] == [digest]
    missing = runner.invoke(app, ["--state", "st", "release", "show", "ffffffffff"])
    assert missing.exit_code == 2
    assert "no release" in missing.stderr
