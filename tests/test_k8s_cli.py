"""``rollout kill --k8s-featureflag`` from a laptop: through a kubeconfig to a cluster (the fake
API server on 127.0.0.1 with RBAC), the FeatureFlag the flagd sidecars watch is killed; an
identity the cluster does not let write gets exit 5 and the cluster keeps its kill."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.service.compose import StatePaths
from tests.fakes.kube import FakeKubeApi
from tests.test_k8s_manifests import role_rules

runner = CliRunner()


def rollout(state: Path, *args: str) -> Any:
    from controller import cli

    return runner.invoke(cli.app, ["--state", str(state), *args])


def kubeconfig(path: Path, kube: FakeKubeApi, token: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: '{kube.url}'}}}}]\n"
        f"users: [{{name: tester, user: {{token: {token}}}}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: tester}}]\n"
    )
    return path


def test_kill_from_a_laptop_reaches_the_featureflag(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = FakeKubeApi()
    try:
        # the operator on call holds the controller's Role; the gateway's may only read
        kube.grant("oncall", role_rules("docs-qa-controller"), user="oncall@corp.example")
        kube.grant("gateway", role_rules("docs-qa-flag-reader"), user="system:serviceaccount:docs-qa:docs-qa-gateway")
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", kube, "oncall")))
        state = tmp_path / "state"
        result = rollout(state, "kill", "--reason", "bad answers", "--operator", "priya.natarajan",
                         "--k8s-featureflag", "docs-qa/docs-qa", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["flags"]["published"] == ["featureflag:docs-qa/docs-qa"]
        obj = kube.featureflag("docs-qa", "docs-qa")
        assert obj is not None
        live = json.loads(StatePaths(state).flags("internal-docs-qa").read_bytes())
        kill_flag = live["flags"]["internal-docs-qa-kill-switch"]
        assert obj["spec"]["flagSpec"]["flags"]["internal-docs-qa-kill-switch"] == kill_flag
        assert kill_flag["defaultVariant"] == "engaged"

        # the gateway's identity may not write: exit 5, one clear paragraph; the cluster keeps the kill
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig-ro", kube, "gateway")))
        result = rollout(state, "kill", "--release", "--reason", "x", "--operator", "priya.natarajan",
                         "--k8s-featureflag", "docs-qa/docs-qa")
        assert result.exit_code == 5, result.output
        assert "403" in result.stderr and "Traceback" not in result.output + result.stderr
        obj = kube.featureflag("docs-qa", "docs-qa")
        assert obj is not None and obj["spec"]["flagSpec"]["flags"]["internal-docs-qa-kill-switch"] == kill_flag
    finally:
        kube.close()


def test_the_reconcile_cronjob_publishes_through_its_environment(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CronJob in deploy/ sets ROLLOUT_K8S_FEATUREFLAG (no option) and runs as the
    controller's service account: its reconcile creates the FeatureFlag the sidecars watch."""
    kube = FakeKubeApi()
    try:
        kube.grant("controller", role_rules("docs-qa-controller"), user="system:serviceaccount:docs-qa:docs-qa-controller")
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", kube, "controller")))
        monkeypatch.setenv("ROLLOUT_K8S_FEATUREFLAG", "docs-qa/docs-qa")
        state = tmp_path / "state"
        result = rollout(state, "reconcile", "--json")
        assert result.exit_code == 0, result.output
        obj = kube.featureflag("docs-qa", "docs-qa")
        assert obj is not None, "the first reconcile creates the FeatureFlag"
        live = json.loads(StatePaths(state).flags("internal-docs-qa").read_bytes())
        assert obj["spec"]["flagSpec"] == {k: live[k] for k in ("flags", "metadata") if k in live}
    finally:
        kube.close()
