"""A node's own dispute, when its first transaction does not get mined: re-sent with a higher fee, and
found again after the node is killed while it waits in the pool. Real daemons on a real anvil.

Anvil mines only when the test says so (automine off). The dispute is sent while the base fee is low;
from the next block on the base fee is held far above what that first transaction offers, so only a
re-sent version (same nonce, higher fee) can be mined.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from channeld.chain import ChainBackend, connect_rpc
from channeld.chain.contract import BalanceProofUpdated, ChannelClosed, decode_event
from channeld.config import InvalidConfig, load_config
from tests.node.helpers import Daemon, Zygote, make_daemon, wait_until
from tests.tools import Anvil

ETH = 10**18
PERIOD = 120  # challenge period (s): anvil's clock is wall time here, never moved
MARGIN = 20  # watchtower.safety_margin of Bob's node
HIGH_BASE_FEE = 50 * 10**9  # far above a first submission's 2 x base fee + tip (base about 1 gwei)
NODE_CONFIG = f'[watchtower]\nbump_after = "1s"\nsafety_margin = "{MARGIN}s"\n'


@dataclass
class Dispute:
    event: BalanceProofUpdated
    tx_hash: bytes
    block_time: int


@pytest.fixture
def backend(chain: tuple[Anvil, str]) -> Iterator[ChainBackend]:
    rpc = connect_rpc(chain[0].url)
    # an earlier test left the base fee high: bring it back, so first submissions are cheap
    rpc.rpc("anvil_setNextBlockBaseFeePerGas", [hex(10**9)])
    rpc.mine()
    yield rpc
    rpc.rpc("evm_setAutomine", [True])  # the module's other tests expect it


def _start(tmp_path: Path, name: str, chain: tuple[Anvil, str], zygote: Zygote) -> Daemon:
    daemon = make_daemon(tmp_path, name, chain[0], chain[1], zygote)
    (daemon.datadir / "channeld.toml").write_text(NODE_CONFIG)
    daemon.start()
    return daemon


def _channel_with_payments(a: Daemon, b: Daemon, payments: int) -> tuple[str, int]:
    a.call("POST", "/channels", {"uri": b.uri, "deposit": str(ETH), "challenge_period": PERIOD})
    wait_until(lambda: a.call("GET", "/channels") and b.call("GET", "/channels"), what="channel on both")
    cid = str(a.channel()["channel_id"])
    for _ in range(payments):
        result = a.call("POST", "/payments", {"node_id": b.node_id, "amount": str(ETH // 100)})
        assert result["status"] == "accepted", result
    wait_until(lambda: b.channel()["partner_nonce"] == a.channel()["our_nonce"] and
               a.channel()["in_flight"] == 0, what="Bob holding Alice's newest proof")
    return cid, int(b.channel()["partner_nonce"])


def _pooled(backend: ChainBackend, address: str) -> dict[int, bytes]:
    """Nonce -> hash of the account's transactions waiting in anvil's pool."""
    content = backend.rpc("txpool_content", [])["pending"]
    mine = next((txs for sender, txs in content.items() if sender.lower() == address.lower()), {})
    return {int(nonce): bytes.fromhex(tx["hash"][2:]) for nonce, tx in mine.items()}


def _mined_nonce(backend: ChainBackend, address: str) -> int:
    return int(backend.rpc("eth_getTransactionCount", [address, "latest"]), 16)


def _events(backend: ChainBackend, contract: str, cid: str, kind: type) -> list[tuple[object, bytes, int]]:
    found = []
    for log in backend.get_logs(contract, 0, backend.head()):
        event = decode_event({"topics": log.topics, "data": log.data})
        if isinstance(event, kind) and "0x" + event.channel_id.hex() == cid:
            found.append((event, log.tx_hash, log.block_number))
    return found


def _close_and_catch_first_dispute(backend: ChainBackend, a: Daemon, b: Daemon, cid: str
                                   ) -> tuple[int, int, bytes, float]:
    """Alice closes (mined at a normal base fee); returns the close's settle time, and the nonce and
    hash of Bob's first dispute transaction once it waits in the pool, and when the close was mined."""
    backend.rpc("evm_setAutomine", [False])
    assert a.call("POST", f"/channels/{cid}/close", {"force": True})["kind"] == "close"
    wait_until(lambda: _pooled(backend, a.address), what="Alice's close in the pool")
    backend.mine()
    closed_at = time.monotonic()
    ((closed, _, _),) = _events(backend, a.contract, cid, ChannelClosed)
    first: dict[int, bytes] = wait_until(lambda: _pooled(backend, b.address),
                                         what="Bob's dispute in the pool")
    ((nonce, tx_hash),) = first.items()
    return closed.settle_time, nonce, tx_hash, closed_at  # type: ignore[attr-defined]


def _mine_until_disputed(backend: ChainBackend, contract: str, cid: str,
                         between_blocks: Callable[[], None] = lambda: None) -> Dispute:
    """Mine a block every 0.3 s with the base fee held high, until the dispute is on chain."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        backend.rpc("anvil_setNextBlockBaseFeePerGas", [hex(HIGH_BASE_FEE)])
        backend.mine()
        found = _events(backend, contract, cid, BalanceProofUpdated)
        if found:
            ((event, tx_hash, block),) = found
            stamp = int(backend.rpc("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)
            return Dispute(event, tx_hash, stamp)  # type: ignore[arg-type]
        between_blocks()
        time.sleep(0.3)
    raise AssertionError("the dispute was not mined within 60 s")


def _assert_replacement_landed(backend: ChainBackend, bob: Daemon, dispute: Dispute, settle_time: int,
                               first_nonce: int, first_hash: bytes, newest_nonce: int) -> None:
    assert dispute.event.nonce == newest_nonce  # Alice's newest proof, as Bob held it
    assert dispute.tx_hash != first_hash and backend.receipt(first_hash) is None
    receipt = backend.receipt(dispute.tx_hash)
    assert receipt is not None and receipt.succeeded
    # the same nonce as the first try: nothing queued behind it, nothing wasted
    assert _mined_nonce(backend, bob.address) == first_nonce + 1
    assert _pooled(backend, bob.address) == {}
    assert dispute.block_time <= settle_time - MARGIN
    print(f"\ndispute gas {receipt.gas_used}")


def test_an_unmined_dispute_is_re_sent_with_a_higher_fee_and_lands_before_the_deadline(
        tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote, backend: ChainBackend) -> None:
    a, b = _start(tmp_path, "a", chain, zygote), _start(tmp_path, "b", chain, zygote)
    cid, newest = _channel_with_payments(a, b, 3)
    settle_time, nonce, first_hash, closed_at = _close_and_catch_first_dispute(backend, a, b, cid)
    dispute = _mine_until_disputed(backend, chain[1], cid)
    print(f"\nclose -> dispute confirmed with a fee bump: {time.monotonic() - closed_at:.2f} s")
    _assert_replacement_landed(backend, b, dispute, settle_time, nonce, first_hash, newest)
    assert "re-sent as 0x" + dispute.tx_hash.hex() in b.log()


def test_a_dispute_left_in_the_pool_by_a_crash_is_replaced_after_restart(
        tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote, backend: ChainBackend) -> None:
    a, b = _start(tmp_path, "a", chain, zygote), _start(tmp_path, "b", chain, zygote)
    cid, newest = _channel_with_payments(a, b, 2)
    settle_time, nonce, first_hash, _ = _close_and_catch_first_dispute(backend, a, b, cid)
    b.kill()  # SIGKILL while its dispute waits in the pool
    b.start()
    # no block for a while: a node that queued its re-sent dispute behind the first (which the pool
    # counts) would be stuck from here on; one that took the nonce over replaces it
    time.sleep(2.5)
    dispute = _mine_until_disputed(backend, chain[1], cid)
    _assert_replacement_landed(backend, b, dispute, settle_time, nonce, first_hash, newest)
    assert len(_events(backend, chain[1], cid, BalanceProofUpdated)) == 1


def test_a_dispute_at_todays_fee_is_mined_without_a_bump(
        tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote, backend: ChainBackend) -> None:
    a, b = _start(tmp_path, "a", chain, zygote), _start(tmp_path, "b", chain, zygote)
    cid, newest = _channel_with_payments(a, b, 2)
    assert a.call("POST", f"/channels/{cid}/close", {"force": True})["kind"] == "close"
    wait_until(lambda: _events(backend, chain[1], cid, ChannelClosed), what="Alice's close mined")
    closed_at = time.monotonic()
    found = wait_until(lambda: _events(backend, chain[1], cid, BalanceProofUpdated), what="Bob's dispute")
    print(f"\nclose -> dispute confirmed without a bump: {time.monotonic() - closed_at:.2f} s")
    ((event, tx_hash, _),) = found
    assert event.nonce == newest  # type: ignore[attr-defined]
    assert "re-sent as" not in b.log()
    receipt = backend.receipt(tx_hash)
    assert receipt is not None and receipt.succeeded


def test_the_fee_bump_settings_are_read_and_checked(tmp_path: Path) -> None:
    (tmp_path / "channeld.toml").write_text('[watchtower]\nbump_after = "30s"\nmax_fee_per_gas = "80gwei"\n')
    settings = load_config(tmp_path, {}, {}).watchtower
    assert (settings.bump_after, settings.max_fee_per_gas) == (30.0, 80 * 10**9)
    with pytest.raises(InvalidConfig, match="max_fee_per_gas"):
        load_config(tmp_path, {"CHANNELD_WATCHTOWER_MAX_FEE_PER_GAS": "0"}, {})
    with pytest.raises(InvalidConfig, match="bump_after"):
        load_config(tmp_path, {"CHANNELD_WATCHTOWER_BUMP_AFTER": "soon"}, {})
