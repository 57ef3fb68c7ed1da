"""The dashboard end to end: headless chromium against real daemons on anvil (see conftest.py)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from channeld.chain import connect_rpc
from tests.dashboard.conftest import ETH, Nodes, screenshot, sign_in
from tests.node.helpers import wait_until


def test_page_loads_with_no_console_errors_and_shows_the_node(page: Any, nodes: Nodes) -> None:
    sign_in(page, nodes, "admin")
    overview = page.locator("#overview")
    assert nodes.a.node_id[:12] in overview.inner_text()
    assert nodes.a.address[:10] in overview.inner_text()
    page.wait_for_selector("#live.on")
    assert page.locator("#action-open").is_visible()
    screenshot(page, "overview")
    page.get_by_role("tab", name="Channels").click()
    page.locator(f'tr[data-channel="{nodes.channel_id}"] button').click()
    page.wait_for_selector("#channel-detail table.audit tbody tr")
    screenshot(page, "channels")
    page.get_by_role("tab", name="Watchtower").click()
    page.wait_for_selector("#tower-summary .stat")
    assert page.console.errors == []


def test_a_payment_made_from_another_node_appears_in_the_live_list_within_a_second(
        page: Any, nodes: Nodes) -> None:
    sign_in(page, nodes, "read")
    page.wait_for_selector("#live.on")
    page.get_by_role("tab", name="Payments").click()
    paid = nodes.b.call("POST", "/payments", {"node_id": nodes.a.node_id, "amount": str(ETH // 1000)})
    started = time.monotonic()
    page.wait_for_selector(f'#payments tr[data-payment="{paid["payment_id"]}"]', timeout=1000)
    elapsed = time.monotonic() - started
    row = page.locator(f'#payments tr[data-payment="{paid["payment_id"]}"]').inner_text()
    assert "received" in row and "0.001 ETH" in row, row
    assert elapsed < 1.0
    chain = page.locator(f'#payments tr[data-payment="{paid["payment_id"]}"] td.chain').inner_text()
    assert chain == str(nodes.a.call("GET", f"/channels/{nodes.channel_id}")["chain"])
    page.locator("#payment-search").fill(str(paid["payment_id"]))
    assert page.locator("#payments tbody tr").count() == 1
    page.locator("#payment-search").fill("")
    screenshot(page, "payments")
    assert page.console.errors == []


def _confirm_dialog(page: Any) -> None:
    dialog = page.locator("#dialog")
    dialog.get_by_role("button", name="Review").click()
    assert "base units" in dialog.locator("#dialog-review").inner_text()
    dialog.get_by_role("button", name="Confirm").click()


def test_opening_and_closing_a_channel_from_the_page(page: Any, nodes: Nodes) -> None:
    known = {c["channel_id"] for c in nodes.c.call("GET", "/channels")}
    sign_in(page, nodes, "admin")
    page.get_by_role("button", name="Open a channel").click()
    dialog = page.locator("#dialog")
    dialog.get_by_label("Partner (node id@host:port)").fill(nodes.c.uri)
    dialog.get_by_label("Deposit (ETH)").fill("0.5")
    dialog.get_by_label("Challenge period (seconds)").fill("30")
    dialog.get_by_role("button", name="Review").click()
    review = dialog.locator("#dialog-review").inner_text()
    assert "0.5 ETH" in review and "500000000000000000" in review, review
    dialog.get_by_role("button", name="Confirm").click()
    page.wait_for_selector("#dialog .operation.good", timeout=20_000)
    assert "open: mined" in dialog.locator(".operation").inner_text()
    screenshot(page, "open-channel")
    dialog.get_by_role("button", name="Done").click()
    cid = wait_until(lambda: next((c["channel_id"] for c in nodes.c.call("GET", "/channels")
                                   if c["channel_id"] not in known), None), what="C sees the channel")
    page.get_by_role("tab", name="Channels").click()
    row = page.locator(f'tr[data-channel="{cid}"]')
    row.wait_for()
    assert "open" in row.inner_text() and "0.5 ETH" in row.inner_text()

    row.get_by_role("button").click()
    page.locator("#channel-detail").get_by_role("button", name="Close").click()
    _confirm_dialog(page)
    page.wait_for_selector("#dialog .operation.good", timeout=20_000)
    page.locator("#dialog").get_by_role("button", name="Done").click()
    page.wait_for_selector(f'tr[data-channel="{cid}"] td.status-settled', timeout=20_000)
    assert nodes.c.call("GET", f"/channels/{cid}")["status"] == "settled"
    assert page.console.errors == []


def test_a_read_only_token_sees_no_actions_and_the_api_refuses_them(page: Any, nodes: Nodes) -> None:
    sign_in(page, nodes, "read")
    assert not page.locator("#action-open").is_visible()
    assert not page.locator("#action-request").is_visible()
    page.get_by_role("tab", name="Channels").click()
    page.locator(f'tr[data-channel="{nodes.channel_id}"] button').click()
    page.wait_for_selector("#channel-detail h2")
    for action in ("Deposit", "Withdraw", "Close"):
        assert page.locator("#channel-detail").get_by_role("button", name=action).count() == 0
    cid = nodes.channel_id
    calls = [[f"/api/v1/channels/{cid}/close", {}], [f"/api/v1/channels/{cid}/deposit", {"amount": "1"}],
             [f"/api/v1/channels/{cid}/withdraw", {"amount": "1"}], ["/api/v1/requests", {"amount": "1"}],
             ["/api/v1/channels", {"uri": nodes.c.uri, "deposit": "1"}]]
    forced = page.evaluate("""async (calls) => Promise.all(calls.map(async ([path, body]) => {
        const token = sessionStorage.getItem("channeld.token");
        const response = await fetch(path, {method: "POST", body: JSON.stringify(body), headers: {
            Authorization: `Bearer ${token}`, "Content-Type": "application/json"}});
        return response.status;
    }))""", calls)
    assert forced == [403] * 5
    after = nodes.a.call("GET", f"/channels/{cid}")
    assert after["status"] == "open" and after["our_withdrawn"] == "0"


def test_a_wrong_token_gets_the_login_screen(page: Any, nodes: Nodes) -> None:
    page.goto(nodes.url)
    page.wait_for_selector("#login-form")
    page.get_by_label("API token").fill("chd_00000000_" + "0" * 48)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#login-error:has-text('unknown bearer token')")
    assert page.locator("#shell").is_hidden()
    screenshot(page, "login")


def test_a_login_link_works_once(page: Any, nodes: Nodes) -> None:
    link = nodes.login_link("read")
    page.goto(link)
    page.wait_for_selector("#overview .stat")
    second = page.context.new_page()
    second.goto(link)
    second.wait_for_selector("#login-error:has-text('unknown, used or expired')")
    assert second.locator("#shell").is_hidden()


def test_a_payment_request_shows_its_qr_code(page: Any, nodes: Nodes) -> None:
    sign_in(page, nodes, "admin")
    page.get_by_role("button", name="Create a payment request").click()
    dialog = page.locator("#dialog")
    dialog.get_by_label("Amount (ETH)").fill("0.002")
    dialog.get_by_label("Description").fill("coffee")
    _confirm_dialog(page)
    image = dialog.locator("img")
    image.wait_for()
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", image.element_handle())
    request = dialog.locator("#request-text").inner_text()
    decoded = httpx.post(f"http://127.0.0.1:{nodes.a.api}/api/v1/requests/decode", json={"request": request},
                         headers={"Authorization": f"Bearer {nodes.a.client().token}"}).json()
    assert decoded["amount"] == str(2 * ETH // 1000) and decoded["description"] == "coffee"
    screenshot(page, "payment-request")
    assert page.console.errors == []


def test_phone_sized_dark_mode_is_usable_by_keyboard(browser: Any, nodes: Nodes) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    page = context.new_page()
    try:
        page.goto(nodes.login_link("admin"))
        page.wait_for_selector("#overview .stat")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # nothing forces sideways scrolling of the whole page
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(17, 19, 23)"
        page.get_by_role("tab", name="Overview").focus()
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.dataset.view") == "channels"
        assert page.locator("#view-channels").is_visible()
        page.keyboard.press("ArrowLeft")
        page.locator("#action-open").focus()
        page.keyboard.press("Enter")
        assert page.locator("#dialog").is_visible()
        page.keyboard.press("Escape")
        assert not page.locator("#dialog").is_visible()
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "phone-dark", full_page=False)  # a sticky header repeats in full-page captures
    finally:
        context.close()


def eth_text(base: int) -> str:
    """What the page's formatEth shows for `base` wei (six decimals, trailing zeros dropped)."""
    whole, fraction = divmod(base, ETH)
    digits = f"{fraction:018d}"[:6].rstrip("0")
    return f"{whole}.{digits} ETH" if digits else f"{whole} ETH"


def test_the_overview_shows_sync_balances_capacity_and_peers_in_light_mode(page: Any, nodes: Nodes) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    backend = connect_rpc(nodes.anvil.url)
    sign_in(page, nodes, "read")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 247, 249)"
    overview = page.locator("#overview")
    sync = overview.locator("dl", has_text="Sync").inner_text()
    assert "follower " in sync and "lag " in sync, sync
    assert backend.head() - 50 <= int(sync.split("head ")[1].split(",")[0]) <= backend.head()
    # the page refreshes every 5 s; A's balance only moves when A sends a transaction
    page.wait_for_selector(f"#overview dl:has-text('{backend.balance(nodes.a.address)} wei')", timeout=30_000)
    open_channels = [c for c in nodes.a.call("GET", "/channels") if c["status"] == "open"]
    can_send = sum(int(c["our_balance"]) for c in open_channels)
    can_receive = sum(int(c["partner_balance"]) for c in open_channels)
    assert eth_text(can_send) in overview.locator("dl", has_text="Can send").inner_text()
    assert eth_text(can_receive) in overview.locator("dl", has_text="Can receive").inner_text()
    assert eth_text(can_send + can_receive) in overview.locator("dl", has_text="Total capacity").inner_text()
    peers = int(overview.locator("dl", has_text="Peers online").locator("dd").first.inner_text())
    assert peers == nodes.a.call("GET", "/health")["peers"] and peers >= 2
    overview.get_by_role("button", name="copy address").click()
    page.wait_for_selector("#toast:has-text('address copied')")
    assert page.evaluate("navigator.clipboard.readText()") == nodes.a.address
    assert page.console.errors == []


def test_channel_filters_by_state_and_partner(page: Any, nodes: Nodes) -> None:
    sign_in(page, nodes, "read")
    page.get_by_role("tab", name="Channels").click()
    rows = page.locator("#channels tbody tr")
    rows.first.wait_for()
    everything = rows.count()
    page.locator("#channel-state").select_option("open")
    states = page.locator("#channels tbody td:nth-child(2)").all_inner_texts()
    assert states and set(states) == {"open"}
    chain = page.locator(f'tr[data-channel="{nodes.channel_id}"] td.chain')
    assert chain.inner_text() == str(nodes.a.call("GET", f"/channels/{nodes.channel_id}")["chain"])
    page.locator("#channel-state").select_option("")
    assert rows.count() == everything
    page.locator("#channel-search").fill(nodes.b.address[2:12].lower())
    assert rows.count() == 1 and rows.first.get_attribute("data-channel") == nodes.channel_id
    page.locator("#channel-search").fill("0xnothing")
    assert rows.count() == 0 and page.locator("#channels-empty").is_visible()


def test_an_action_is_reached_with_tab_and_done_with_enter(page: Any, nodes: Nodes) -> None:
    sign_in(page, nodes, "admin")
    page.evaluate("document.activeElement.blur()")
    for _ in range(60):  # tab from the top of the page to the action, as a keyboard user would
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "action-request":
            break
    assert page.evaluate("document.activeElement.id") == "action-request"
    page.keyboard.press("Enter")
    dialog = page.locator("#dialog")
    assert dialog.is_visible()
    page.keyboard.type("0.003")
    page.keyboard.press("Tab")
    page.keyboard.type("tea")
    page.keyboard.press("Enter")  # submits the dialog's form: the review step
    dialog.locator("#dialog-review").wait_for()
    assert "3000000000000000" in dialog.locator("#dialog-review").inner_text()
    page.keyboard.press("Enter")  # the focused Confirm button
    dialog.locator("img").wait_for()
    page.wait_for_function("document.activeElement.id === 'dialog-ok'")
    page.keyboard.press("Enter")  # Done
    page.wait_for_function("!document.getElementById('dialog').open")
    assert page.console.errors == []
