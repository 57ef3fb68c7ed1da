"""The session channel's end (this file runs last): withdraw, unilateral close and settle through the API,
each answered 202 with an operation that is then mined."""

from __future__ import annotations

from channeld.chain import connect_rpc
from tests.api.conftest import ETH, Network
from tests.node.helpers import wait_until


def _mined(network: Network, operation_id: int, ends: tuple[str, ...] = ("mined",)) -> dict[str, object]:
    api = network.api_b  # B keeps the default rate limit, which polling every 50 ms stays under

    def done() -> dict[str, object] | None:
        found = api.ok("GET", f"/operations/{operation_id}")
        return found if found["status"] in ends else None

    try:
        found: dict[str, object] = wait_until(done, what=f"operation {operation_id} mined")
    except AssertionError:
        last = api.ok("GET", f"/operations/{operation_id}")
        raise AssertionError(f"{last}\n{network.b.log()[-3000:]}") from None
    return found


def test_withdraw_close_and_settle(network: Network) -> None:
    api, cid = network.api_b, network.channel_id
    withdraw = api.post(f"/channels/{cid}/withdraw", {"amount": str(ETH // 10)})
    assert withdraw.status_code == 202
    assert withdraw.json()["kind"] == "withdraw"
    _mined(network, withdraw.json()["operation_id"])
    wait_until(lambda: api.ok("GET", f"/channels/{cid}")["our_withdrawn"] == str(ETH // 10), what="withdrawn")
    close = api.post(f"/channels/{cid}/close", {"force": True})
    assert close.status_code == 202 and close.json()["kind"] == "close"
    _mined(network, close.json()["operation_id"])
    wait_until(lambda: api.ok("GET", f"/channels/{cid}")["status"] == "closed", what="closed")
    early = api.post(f"/channels/{cid}/settle")
    assert early.status_code == 400 and "challenge period" in early.json()["error"]
    backend = connect_rpc(network.anvil.url)
    backend.rpc("evm_increaseTime", [60])
    backend.rpc("evm_mine", [])

    def settle() -> dict[str, object] | None:
        response = api.post(f"/channels/{cid}/settle")
        if response.status_code == 400 and "settled, not closed" in response.json()["error"]:
            return {"operation_id": None}  # the node settled by itself first, as it does when due
        return dict(response.json()) if response.status_code == 202 else None

    queued = wait_until(settle, what="settle accepted once chain time passed the deadline")
    if queued["operation_id"] is not None:  # both nodes settle when due: the later transaction reverts
        _mined(network, int(str(queued["operation_id"])), ends=("mined", "skipped", "failed"))
    wait_until(lambda: api.ok("GET", f"/channels/{cid}")["status"] == "settled", what="settled")
    assert api.post(f"/channels/{cid}/deposit", {"amount": "1"}).status_code == 400
