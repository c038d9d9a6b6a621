"""The local stack's alert webhooks (deploy/local/webhooks.py): Alertmanager's receivers point at
them unless PULSE_ALERT_WEBHOOK_BASE says otherwise; they take its notifications and refuse
what is not one, saying why."""

from __future__ import annotations

import http.client
import http.server
import json
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "local"))

import webhooks  # noqa: E402
from stack import Stack  # noqa: E402

NOTIFICATION = {
    "status": "firing",
    "receiver": "pager",
    "alerts": [{"status": "firing", "labels": {"alertname": "PulseAvailabilityBudgetBurn"}}],
}


@pytest.fixture
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), webhooks.handler(webhooks.Notifications())
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_alertmanager_posts_to_the_local_webhooks_by_default(tmp_path: Path) -> None:
    stack = Stack(tmp_path, {"PULSE_STACK_PORT_OFFSET": "7"})
    stack.alertmanager_config()
    for name in webhooks.RECEIVERS:
        url = (tmp_path / "alertmanager-secrets" / f"{name}.url").read_text().strip()
        assert url == f"http://127.0.0.1:{5001 + 7}/{name}"


def test_a_notification_is_taken_and_listed(receiver: str, capsys: pytest.CaptureFixture) -> None:
    assert _post(f"{receiver}/pager", json.dumps(NOTIFICATION).encode()) == (
        200,
        {"status": "received"},
    )
    assert "pager firing PulseAvailabilityBudgetBurn" in capsys.readouterr().out
    with urllib.request.urlopen(receiver + "/", timeout=5) as response:
        (listed,) = json.load(response)
    assert listed["receiver"] == "pager"
    assert listed["alerts"] == NOTIFICATION["alerts"]


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/pagr", b"{}", 404, "no receiver 'pagr'"),
        ("/chat", b"not json", 400, "Alertmanager's JSON"),
        ("/chat", b"[1]", 400, "a JSON object"),
    ],
)
def test_what_is_not_a_notification_is_refused_saying_why(
    receiver: str, path: str, body: bytes, status: int, says: str
) -> None:
    code, reply = _post(receiver + path, body)
    assert code == status
    assert says in reply["error"]
    with urllib.request.urlopen(receiver + "/", timeout=5) as response:
        assert json.load(response) == []


def test_a_body_over_the_bound_is_refused_unread(receiver: str) -> None:
    host, port = receiver.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.putrequest("POST", "/pager")
    connection.putheader("Content-Length", str(webhooks.MAX_BODY_BYTES + 1))
    connection.endheaders()  # the body is never sent: the size alone refuses it
    response = connection.getresponse()
    assert response.status == 413
    assert "at most" in json.load(response)["error"]
    connection.close()
