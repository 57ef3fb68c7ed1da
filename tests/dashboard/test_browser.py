"""The dashboard end to end: headless chromium against real daemons on anvil (see conftest.py)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.dashboard.conftest import ETH, Nodes, screenshot
from tests.node.helpers import wait_until


def sign_in(page: Any, nodes: Nodes, scope: str) -> None:
    page.goto(nodes.login_link(scope))
    page.wait_for_selector("#overview .stat")
    assert page.locator("#scope").inner_text() == f"{scope} access"
    assert "#login" not in page.url  # the spent code does not stay in the address bar or history


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
    c_channel = wait_until(lambda: nodes.c.call("GET", "/channels"), what="C sees the channel")[0]
    cid = c_channel["channel_id"]
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
    forced = page.evaluate("""async (path) => {
        const token = sessionStorage.getItem("channeld.token");
        const response = await fetch(path, {method: "POST", headers: {
            Authorization: `Bearer ${token}`, "Content-Type": "application/json"}, body: "{}"});
        return response.status;
    }""", f"/api/v1/channels/{nodes.channel_id}/close")
    assert forced == 403
    assert nodes.a.call("GET", f"/channels/{nodes.channel_id}")["status"] == "open"


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
