"""Security review M7: an orchestrator secret travels over https only, unless the entry opts out in so many words
(tls.allowPlaintext, or allowPlaintext: 'true' in a fleet Secret), and the worker's status warns while it is sent
in plaintext or without verifying the certificate. The API server's CEL rule is in test_validation_cluster.py."""

from __future__ import annotations

from typing import Any

import pytest
from byoc_operator import api, registration
from byoc_operator.orchestrator import OrchestratorAccess, RegistrationError
from byoc_operator.registration import Target
from byoc_operator.render import Worker
from byoc_operator.status import INSECURE, transitions, with_transport

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def test_the_secret_may_travel_over_https_or_where_plaintext_is_allowed() -> None:
    assert api.secret_may_travel("https://o:8935", allow_plaintext=False)
    assert not api.secret_may_travel("http://o:8935", allow_plaintext=False)
    assert api.secret_may_travel("http://o:8935", allow_plaintext=True)


class UnreadableSecrets:
    """A Kubernetes client that must not be asked: the secret is refused before it is read."""

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the Secret was read although it may not be sent")


async def test_a_secret_is_not_read_for_an_http_orchestrator_that_does_not_allow_plaintext() -> None:
    access = OrchestratorAccess(UnreadableSecrets())  # type: ignore[arg-type]
    # A fleet Secret's URL never passed the API server: the same rule, in code.
    with pytest.raises(RegistrationError) as refused:
        await access.credentials("team-a", Target("http://o:8935", "fleet-0", "secret"))
    message = str(refused.value)
    assert "secret not sent" in message and "allowPlaintext" in message


def fleet_worker() -> Worker:
    spec = {"registration": {"orchestratorSelector": {"matchLabels": {"fleet": "eu"}}}}
    return Worker.from_body({"metadata": {"name": "w", "namespace": "team-a"}, "spec": spec}, "img")


def test_fleet_secrets_opt_into_plaintext_by_their_own_key() -> None:
    secrets = [
        {"name": "a", "labels": {"fleet": "eu"}, "url": "http://a:8935", "plaintext": True},
        {"name": "b", "labels": {"fleet": "eu"}, "url": "http://b:8935"},
    ]
    targets = registration.selected_targets(fleet_worker(), secrets)
    assert [(t.url, t.allow_plaintext) for t in targets] == [("http://a:8935", True), ("http://b:8935", False)]


def test_specs_carry_the_opt_in_to_their_targets() -> None:
    plain = {"url": "http://o:8935", "secretRef": {"name": "s"}, "tls": {"allowPlaintext": True}}
    spec = {"orchestrators": [plain, {"url": "https://p:8935", "secretRef": {"name": "s"}}]}
    worker = Worker.from_body({"metadata": {"name": "w", "namespace": "team-a"}, "spec": spec}, "img")
    assert [t.allow_plaintext for t in registration.explicit_targets(worker)] == [True, False]
    admin = {"spec": {**plain, "namespaceSelector": {}}}
    assert registration.orchestrator_target(admin, "byoc-system").allow_plaintext


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_the_insecure_transport_condition_names_each_insecure_orchestrator_and_warns_once() -> None:
    base = {"conditions": [{"type": "Ready", "status": "True", "reason": "AllPodsReady", "message": ""}]}
    secure = [Target("https://o:8935", "s", "secret")]
    assert INSECURE not in conditions(with_transport(base, secure, 1, NOW))

    plaintext = Target("http://p:8935", "s", "secret", allow_plaintext=True)
    unverified = Target("https://u:8935", "s", "secret", insecure=True)
    refused = Target("http://r:8935", "s", "secret")  # not allowed: never sent, so nothing travels in plaintext
    status = with_transport(base, [*secure, plaintext, unverified, refused], 1, NOW)
    c = conditions(status)[INSECURE]
    assert c["status"] == "True" and c["reason"] == "PlaintextSecret"
    assert "in plaintext (tls.allowPlaintext) to http://p:8935" in c["message"]
    assert "not verified (tls.insecureSkipVerify) for https://u:8935" in c["message"]
    assert "http://r:8935" not in c["message"] and "https://o:8935" not in c["message"]
    assert transitions(base, status) == [("Warning", "PlaintextSecret", c["message"])]

    # The next round changes nothing (no write, no second event) ...
    again = with_transport(status, [*secure, plaintext, unverified], 1, LATER)
    assert again == status and transitions(status, again) == []
    only_unverified = conditions(with_transport(status, [unverified], 1, LATER))[INSECURE]
    assert only_unverified["reason"] == "UnverifiedCertificate"
    # ... and once every orchestrator is called securely, the condition goes.
    assert INSECURE not in conditions(with_transport(status, secure, 2, LATER))
