"""Per-channel views and actions in the browser: balance history, deposit, withdraw, countdown, towers."""

from __future__ import annotations

import json
import time
from typing import Any

from channeld.chain import connect_rpc
from tests.dashboard.conftest import ETH, Nodes, screenshot, sign_in
from tests.node.helpers import Daemon, wait_until

MILLI = ETH // 1000


def audit(nodes: Nodes, cid: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = nodes.a.call("GET", f"/dashboard/channels/{cid}/audit")
    return found


def open_from_a(nodes: Nodes, partner: Daemon, deposit: int, challenge_period: int) -> str:
    """A opens a channel to `partner` through the API; its id once both sides have it open."""
    known = {c["channel_id"] for c in nodes.a.call("GET", "/channels")}
    nodes.a.call("POST", "/channels", {"uri": partner.uri, "deposit": str(deposit),
                                       "challenge_period": challenge_period})
    cid: str = wait_until(lambda: next((c["channel_id"] for c in nodes.a.call("GET", "/channels")
                                        if c["channel_id"] not in known and c["status"] == "open"), None),
                          what="A's new channel")
    wait_until(lambda: any(c["channel_id"] == cid for c in partner.call("GET", "/channels")),
               what="the partner's side of the channel")
    return cid


def show_channel(page: Any, cid: str) -> Any:
    page.get_by_role("tab", name="Channels").click()
    page.locator(f'tr[data-channel="{cid}"]').get_by_role("button", name="Details").click()
    detail = page.locator("#channel-detail")
    detail.locator("svg[data-series]").wait_for()
    return detail


def test_the_balance_history_starts_at_the_opening_deposits_and_steps_with_every_change(
        page: Any, nodes: Nodes) -> None:
    a, d = nodes.a, nodes.d
    sign_in(page, nodes, "read")  # open before A pays, so the latency chart has a sample on either side
    cid = open_from_a(nodes, d, 1000 * MILLI, 30)
    steps = [
        lambda: a.call("POST", f"/channels/{cid}/deposit", {"amount": str(500 * MILLI)}),
        lambda: a.call("POST", "/payments", {"node_id": d.node_id, "amount": str(100 * MILLI)}),
        lambda: d.call("POST", "/payments", {"node_id": a.node_id, "amount": str(30 * MILLI)}),
        lambda: a.call("POST", f"/channels/{cid}/withdraw", {"amount": str(200 * MILLI)}),
        lambda: d.call("POST", f"/channels/{cid}/deposit", {"amount": str(400 * MILLI)}),
    ]
    wait_until(lambda: len(audit(nodes, cid)) == 1, what="the opening deposit in the audit trail")
    for done, step in enumerate(steps, start=2):  # each step waits for its entry: the order is known
        step()
        wait_until(lambda n=done: len(audit(nodes, cid)) == n, what=f"audit entry {done}")
    trail = audit(nodes, cid)
    assert [(e["kind"], e["by"]) for e in trail] == [
        ("deposit", "us"), ("deposit", "us"), ("payment_sent", "us"), ("payment_received", "partner"),
        ("withdraw", "us"), ("deposit", "partner")]
    ours = [str(m * MILLI) for m in (1000, 1500, 1400, 1430, 1230, 1230)]
    theirs = [str(m * MILLI) for m in (0, 0, 100, 70, 70, 470)]
    channel = a.call("GET", f"/channels/{cid}")
    assert (ours[-1], theirs[-1]) == (channel["our_balance"], channel["partner_balance"])

    detail = show_channel(page, cid)
    page.wait_for_function("""(cid) => {
        const chart = document.querySelector("#channel-detail svg[data-series]");
        return chart && JSON.parse(chart.dataset.series).ours.length === 6;
    }""", arg=cid)
    series = json.loads(detail.locator("svg[data-series]").get_attribute("data-series"))
    assert series == {"ours": ours, "partner": theirs}
    assert detail.locator("svg polyline.line.ours").count() == 1
    rows = detail.locator("table.audit tbody tr")
    assert rows.count() == 6
    assert "withdraw by us" in rows.nth(1).inner_text() and "0.2 ETH" in rows.nth(1).inner_text()
    assert "deposit by partner" in rows.nth(0).inner_text() and "0.4 ETH" in rows.nth(0).inner_text()
    screenshot(page, "channel-history")

    page.get_by_role("tab", name="Payments").click()
    page.wait_for_selector("#chart-rate rect.bar")
    page.wait_for_selector("#chart-latency circle.dot", timeout=40_000)  # sampled every 5 s at most
    assert page.console.errors == []


def _watch_progress(page: Any) -> None:
    """Record every text the dialog's progress line shows, however briefly."""
    page.evaluate("""() => {
        window.seenProgress = [];
        const box = document.getElementById("dialog-progress");
        new MutationObserver(() => window.seenProgress.push(box.textContent))
            .observe(box, {childList: true, subtree: true, characterData: true});
    }""")


def _review_and_confirm(page: Any, expected: list[str]) -> str:
    dialog = page.locator("#dialog")
    dialog.get_by_role("button", name="Review").click()
    review = dialog.locator("#dialog-review").inner_text()
    for text in expected:
        assert text in review, (text, review)
    _watch_progress(page)
    dialog.get_by_role("button", name="Confirm").click()
    page.wait_for_selector("#dialog .operation.good, #dialog .operation.bad, #dialog-error:not(:empty)",
                           timeout=60_000)
    assert dialog.locator("#dialog-error").inner_text() == "", dialog.inner_text()
    final = dialog.locator(".operation").inner_text()
    seen: list[str] = page.evaluate("window.seenProgress")
    assert any(": queued" in s or ": sent" in s for s in seen), seen  # it showed the way, not only the end
    dialog.get_by_role("button", name="Done").click()
    return str(final)


def test_deposit_and_withdraw_from_the_page(page: Any, nodes: Nodes) -> None:
    cid = open_from_a(nodes, nodes.c, ETH, 30)  # its own channel: B's is at the node's deposit limit
    before = nodes.a.call("GET", f"/channels/{cid}")
    sign_in(page, nodes, "admin")
    detail = show_channel(page, cid)
    detail.get_by_role("button", name="Deposit").click()
    page.locator("#dialog").get_by_label("Add (ETH)").fill("0.25")
    total = int(before["our_deposit"]) + 250 * MILLI
    final = _review_and_confirm(page, ["0.25 ETH", "250000000000000000", str(total)])
    assert final.startswith("deposit: mined · tx 0x"), final
    wait_until(lambda: nodes.a.call("GET", f"/channels/{cid}")["our_deposit"] == str(total),
               what="the deposit on chain")

    detail = show_channel(page, cid)
    detail.get_by_role("button", name="Withdraw").click()
    page.locator("#dialog").get_by_label("Withdraw (ETH)").fill("0.125")
    final = _review_and_confirm(page, ["0.125 ETH", "125000000000000000"])
    assert final.startswith("withdraw: mined · tx 0x"), final
    withdrawn = int(before["our_withdrawn"]) + 125 * MILLI
    wait_until(lambda: nodes.a.call("GET", f"/channels/{cid}")["our_withdrawn"] == str(withdrawn),
               what="the withdrawal on chain")
    assert page.console.errors == []


def test_a_closed_channel_counts_down_to_its_settlement(page: Any, nodes: Nodes) -> None:
    period = 600
    page.clock.install()  # the page's clock, moved on by the test instead of waiting ten minutes
    sign_in(page, nodes, "admin")
    cid = open_from_a(nodes, nodes.c, 100 * MILLI, period)
    nodes.a.call("POST", f"/channels/{cid}/close", {"force": True})
    wait_until(lambda: nodes.a.call("GET", f"/channels/{cid}")["status"] == "closed", what="the close")
    page.get_by_role("tab", name="Channels").click()
    countdown = page.locator(f'tr[data-channel="{cid}"] .countdown')
    countdown.wait_for()
    first = _seconds(countdown.inner_text())
    assert 0 < first <= period
    screenshot(page, "countdown")
    page.clock.fast_forward(90_000)
    page.wait_for_function(f"""() => {{
        const shown = document.querySelector('tr[data-channel="{cid}"] .countdown');
        return shown && ({SECONDS_JS})(shown.textContent) <= {first - 90 + 1};
    }}""")
    page.clock.fast_forward((period + 5) * 1000)
    page.wait_for_selector(f"tr[data-channel=\"{cid}\"] .countdown:text-is('ended, settling')")
    backend = connect_rpc(nodes.anvil.url)
    backend.rpc("evm_increaseTime", [period + 5])
    backend.rpc("evm_mine", [])  # the chain's time passes too: the node settles by itself
    page.wait_for_selector(f'tr[data-channel="{cid}"] td.status-settled', timeout=60_000)
    assert nodes.a.call("GET", f"/channels/{cid}")["status"] == "settled"
    assert page.locator(f'tr[data-channel="{cid}"] .countdown').count() == 0


SECONDS_JS = """(text) => text.split(" ").reduce((t, part) =>
    t + Number(part.slice(0, -1)) * ({h: 3600, m: 60, s: 1}[part.slice(-1)] ?? NaN), 0)"""


def _seconds(text: str) -> int:
    """'9m 58s' or '58s' or '1h 2m' in seconds (to the shown precision)."""
    total = 0
    for part in text.split():
        total += int(part[:-1]) * {"h": 3600, "m": 60, "s": 1}[part[-1]]
    return total


def test_the_watchtower_view_shows_when_the_last_proof_was_pushed(page: Any, nodes: Nodes) -> None:
    started = time.time()
    nodes.b.call("POST", "/payments", {"node_id": nodes.a.node_id, "amount": str(MILLI)})

    def pushed_since() -> dict[str, Any] | None:
        towers = nodes.a.call("GET", "/watchtowers")
        assert [t["uri"] for t in towers] == [nodes.tower_uri]
        at = towers[0]["last_push_at"]
        return towers[0] if at is not None and at >= started - 1 else None

    tower = wait_until(pushed_since, what="the tower to be pushed B's payment")
    sign_in(page, nodes, "read")
    page.get_by_role("tab", name="Watchtower").click()
    shown = page.locator("#last-push")
    shown.wait_for()
    at = float(shown.get_attribute("data-at"))
    assert at >= tower["last_push_at"]
    expected = page.evaluate("(at) => new Date(at * 1000).toLocaleTimeString()", at)
    assert shown.inner_text() == expected
    row = page.locator("#towers tbody tr")
    assert row.count() == 1 and row.locator("td.last-push").inner_text() != "never"
    screenshot(page, "watchtower")
    assert page.console.errors == []
