"""Message formats: Standard Webhooks signatures (checked by the reference verifier), Slack
blocks, email parts; and the address guard."""

from __future__ import annotations

import ipaddress
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from modelreg.errors import InvalidInput
from modelreg.services.delivery import formats, guard
from modelreg.services.secrets import new_webhook_secret

EVENT = {
    "seq": 42,
    "event": "registry:version:stage",
    "at": "2026-12-07T14:03:21.123456+00:00",
    "actor": "ann",
    "model": "fraud",
    "version": 3,
    "target": "fraud:3",
    "reason": "better recall <@here>",
    "before": {"stage": "staging"},
    "after": {"stage": "production"},
    "url": "https://registry.example.com/models/fraud/versions/3",
}


def test_signature_verifies_with_the_standard_webhooks_package() -> None:
    secret = new_webhook_secret()
    body = formats.webhook_body(EVENT)
    headers = formats.webhook_headers([secret], "msg_abc", int(time.time()), body)
    verifier = Verifier(secret)
    assert verifier.verify(body, headers) == EVENT
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body + b" ", headers)


def test_during_a_rotation_either_secret_verifies() -> None:
    new, old, other = new_webhook_secret(), new_webhook_secret(), new_webhook_secret()
    body = formats.webhook_body(EVENT)
    headers = formats.webhook_headers([new, old], "msg_abc", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        verifier = Verifier(secret)
        assert verifier.verify(body, headers)["seq"] == 42
    stranger = Verifier(other)
    with pytest.raises(WebhookVerificationError):
        stranger.verify(body, headers)


def test_the_spec_example_signature() -> None:
    # From the Standard Webhooks specification's example.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 (the spec's example)
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert formats.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_slack_message_has_what_who_why_and_a_button() -> None:
    message = formats.slack_message(EVENT)
    text = json.dumps(message, ensure_ascii=False)
    assert "registry:version:stage" in message["text"]
    assert "ann" in text
    assert "staging → production" in text
    assert "<@here>" not in text  # escaped: a reason cannot mention a channel
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    assert actions[0]["elements"][0]["url"] == EVENT["url"]
    no_link = formats.slack_message({**EVENT, "url": None})["blocks"]
    assert not [b for b in no_link if b["type"] == "actions"]


def test_slack_shows_the_gates_that_failed() -> None:
    failed = [{"criterion": "metrics.auc >= 0.9", "passed": False, "actual": {"metrics.auc": 0.8}}]
    message = formats.slack_message({**EVENT, "after": {"failed_criteria": failed}})
    assert "metrics.auc = 0.8" in json.dumps(message)


def test_email_has_a_text_and_an_html_part() -> None:
    message = formats.email_message(
        {**EVENT, "reason": "<script>x</script>"}, sender="reg@example.com", to="ops@example.com"
    )
    types = [part.get_content_type() for part in message.iter_parts()]
    assert types == ["text/plain", "text/html"]
    text, html = (part.get_content() for part in message.iter_parts())
    assert EVENT["url"] in text
    assert EVENT["url"] in html
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.100.100.200/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "ftp://example.com/",
        "https://user:pw@example.com/",
        "https:///nohost",
    ],
)
def test_guard_refuses(url: str) -> None:
    with pytest.raises(InvalidInput):
        guard.check_url(url, allow_private=False)


def test_guard_allows_global_addresses_and_private_ones_when_told() -> None:
    assert guard.check_url("https://8.8.8.8:8443/x?y=1", allow_private=False).path == "/x?y=1"
    assert guard.check_url("http://127.0.0.1:9/hook", allow_private=True).port == 9
    with pytest.raises(InvalidInput):  # never an unspecified address, even when allowed
        guard.check_url("http://0.0.0.0/", allow_private=True)


def test_a_name_is_checked_on_every_address_it_resolves_to() -> None:
    target = guard.check_url("http://localhost:9/hook", allow_private=False)
    with pytest.raises(InvalidInput, match="loopback"):
        guard.resolve(target, allow_private=False)
    assert ipaddress.ip_address("127.0.0.1") in guard.resolve(target, allow_private=True)
