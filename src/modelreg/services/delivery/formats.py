"""What each kind of subscription is sent: a signed webhook, a Slack message, an email.

Every kind carries the same event (``services.events.event_to_dict``); only its wrapping differs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
from email.message import EmailMessage
from typing import Any

from modelreg.errors import InvalidInput
from modelreg.services.secrets import WEBHOOK_SECRET_PREFIX

__all__ = ["email_message", "sign", "slack_message", "summary", "webhook_body", "webhook_headers"]


def webhook_body(event: dict[str, Any]) -> bytes:
    """The JSON body of a generic webhook: the event itself, compact, UTF-8."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def _key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret: the base64 after the prefix, decoded."""
    try:
        return base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except ValueError:
        raise InvalidInput("a webhook secret is whsec_ and base64", detail={}) from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks' ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers, one signature per secret (current first), space-separated.

    While a rotated-out secret is still valid it signs too, so a receiver holding either
    secret verifies the message.
    """
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
    }


def summary(event: dict[str, Any]) -> str:
    """One line: what changed, on what, by whom."""
    return f"{event.get('event')} {event.get('target') or ''} by {event.get('actor')}".strip()


def _what(event: dict[str, Any]) -> list[tuple[str, str]]:
    """Label/value pairs of what the event changed, for humans."""
    rows: list[tuple[str, str]] = [("Event", str(event.get("event")))]
    if event.get("target"):
        rows.append(("Target", str(event["target"])))
    rows.append(("By", str(event.get("actor"))))
    if event.get("reason"):
        rows.append(("Why", str(event["reason"])))
    before, after = event.get("before") or {}, event.get("after") or {}
    for key in ("stage", "state", "alias", "version"):
        if key in after:
            old = before.get(key)
            rows.append((key.capitalize(), f"{old} → {after[key]}" if old else str(after[key])))
    return rows


def _metrics(event: dict[str, Any]) -> list[tuple[str, str]]:
    """The metrics a promotion's gates looked at, when the event carries them."""
    after = event.get("after") or {}
    rows: list[tuple[str, str]] = []
    for failure in after.get("failed_criteria") or []:
        if isinstance(failure, dict):
            actual = failure.get("actual") or {}
            shown = (
                ", ".join(f"{k} = {v}" for k, v in actual.items())
                if isinstance(actual, dict)
                else str(actual)
            )
            rows.append((f"{failure.get('criterion', '?')} (not met)", shown))
    metrics = after.get("metrics")
    if isinstance(metrics, dict):
        rows.extend((str(k), str(v)) for k, v in sorted(metrics.items()))
    return rows[:10]


def slack_message(event: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: a header, what changed, gate metrics, a button."""
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{_slack(v)}"} for k, v in _what(event)]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": summary(event)[:150]}},
        {"type": "section", "fields": fields[:10]},
    ]
    metrics = _metrics(event)
    if metrics:
        text = "\n".join(f"• {_slack(k)}: {_slack(v)}" for k, v in metrics)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if event.get("url"):
        button = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Open in modelreg"},
            "url": event["url"],
        }
        blocks.append({"type": "actions", "elements": [button]})
    return {"text": summary(event), "blocks": blocks}


def _slack(text: str) -> str:
    """``text`` with Slack's control characters escaped (so a reason cannot @-mention)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def email_message(event: dict[str, Any], *, sender: str, to: str) -> EmailMessage:
    """An email with a plain-text and an HTML part, and the event's link in both."""
    message = EmailMessage()
    message["Subject"] = f"[modelreg] {summary(event)}"[:200]
    message["From"] = sender
    message["To"] = to
    rows = _what(event) + _metrics(event)
    url = event.get("url")
    text = "\n".join(f"{k}: {v}" for k, v in rows)
    if url:
        text += f"\n\nOpen: {url}"
    message.set_content(text + "\n")
    cells = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
    )
    link = f"<p><a href='{html.escape(url, quote=True)}'>Open in modelreg</a></p>" if url else ""
    message.add_alternative(
        f"<html><body><table>{cells}</table>{link}</body></html>", subtype="html"
    )
    return message
