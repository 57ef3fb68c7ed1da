"""A refused payment is offered again without a reconnection: two real daemons (separate processes) on anvil.

The payee acts on chain events only after 3 confirmations, the payer at once, so right after the payer
tops its deposit up the payee refuses a payment backed by it (code 22, "exceeds the partner's balance").
The payer answers the API at once with `refused`, refuses later payments on the channel at once, and
offers the refused proof again after a back-off; once blocks confirm the deposit for the payee, the
offered proof is accepted and the channel pays again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from channeld.api._client import ApiError
from tests.node.helpers import Daemon, Zygote, wait_until
from tests.node.multihop import mine_until, start
from tests.tools import Anvil

MILLI = 10**15


def test_a_payment_refused_for_an_unseen_deposit_is_accepted_once_the_payee_sees_it(
        tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote) -> None:
    anvil = chain[0]
    a = start(tmp_path, "a", chain, zygote)
    b = start(tmp_path, "b", chain, zygote, "chain.confirmations=3")
    a.call("POST", "/channels", {"uri": b.uri, "deposit": str(10 * MILLI), "challenge_period": 30})
    cid = str(mine_until(anvil, lambda: open_on_both(a, b), what="the channel open on both sides"))
    a.call("POST", f"/channels/{cid}/deposit", {"amount": str(10 * MILLI)})
    wait_until(lambda: a.channel()["our_deposit"] == str(20 * MILLI), what="the payer seeing its top-up")
    assert b.channel()["partner_deposit"] == str(10 * MILLI)  # not yet confirmed for the payee

    refused = a.call("POST", "/payments", {"node_id": b.node_id, "amount": str(15 * MILLI)})
    assert refused["status"] == "refused" and "exceeds the partner's balance" in refused["reason"]
    with pytest.raises(ApiError, match=r"refused our payment with nonce 1 .*offered again"):
        a.call("POST", "/payments", {"node_id": b.node_id, "amount": "1"})

    mine_until(anvil, lambda: b.channel()["partner_deposit"] == str(20 * MILLI),
               what="the payee seeing the top-up")
    wait_until(lambda: a.channel()["in_flight"] == 0, timeout=90.0, what="the refused proof accepted")
    assert b.channel()["our_balance"] == str(15 * MILLI)
    assert a.call("POST", "/payments", {"node_id": b.node_id, "amount": "1"})["status"] == "accepted"


def open_on_both(a: Daemon, b: Daemon) -> str | None:
    """The channel's id once both sides hold it open (the payee sees it only after its confirmations)."""
    ours = [c for c in a.call("GET", "/channels") if c["status"] == "open"]
    theirs = {c["channel_id"] for c in b.call("GET", "/channels") if c["status"] == "open"}
    return str(ours[0]["channel_id"]) if ours and ours[0]["channel_id"] in theirs else None
