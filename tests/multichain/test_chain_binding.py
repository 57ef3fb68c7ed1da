"""Nothing crosses chains: a proof signed for one chain is refused on the other, `Init` lists the chains a
node serves (strictly decoded) and a session carries only the chains both sides list."""

from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest

from channeld import protocol as p
from channeld import wire
from channeld.errors import PeerFault
from channeld.node._peers import agreed_chains
from tests.protocol.pair import CHALLENGE, CHANNEL_ID, CONTRACT, NOW, Peer, key_of

ALPHA, BETA = 4242, 4343
OTHER_CONTRACT = bytes.fromhex("ab" * 20)


def pair_on(chain_id: int, contract: bytes = CONTRACT) -> tuple[Peer, Peer]:
    """Alice and Bob on `chain_id`, with the same keys, channel id and deposits on every chain."""
    peers = []
    for name, partner in (("alice", "bob"), ("bob", "alice")):
        signer, other = p.Signer(key_of(name)), p.Signer(key_of(partner))
        peer = Peer(signer, p.new_channel(chain_id, contract, CHANNEL_ID, CHALLENGE, signer.address,
                                          other.public_key))
        peer.feed(p.ActionTick(NOW))
        peers.append(peer)
    alice, bob = peers
    for peer in peers:
        peer.feed(p.ContractReceiveDeposit(alice.signer.address, 1000))
        peer.feed(p.ContractReceiveDeposit(bob.signer.address, 1000))
    return alice, bob


def signed_payment(alice: Peer) -> wire.Payment:
    alice.feed(p.ActionPay(1, 100, b""))
    message = alice.outbox.pop()
    assert isinstance(message, wire.Payment)
    return message


@pytest.mark.parametrize(("chain_id", "contract"), [(BETA, CONTRACT), (ALPHA, OTHER_CONTRACT)])
def test_a_proof_for_one_chain_is_refused_on_another(chain_id: int, contract: bytes) -> None:
    alice_alpha, _ = pair_on(ALPHA)
    _, bob_elsewhere = pair_on(chain_id, contract)
    payment = signed_payment(alice_alpha)
    before = bob_elsewhere.state
    with pytest.raises(p.WrongChannel, match=r"chain|contract"):
        bob_elsewhere.feed(payment)
    assert bob_elsewhere.state is before  # nothing changed


def test_a_proof_relabelled_for_another_chain_fails_its_signature() -> None:
    """The EIP-712 domain binds the chain id: the same fields under the other chain id do not verify."""
    alice_alpha, _ = pair_on(ALPHA)
    _, bob_beta = pair_on(BETA)
    payment = signed_payment(alice_alpha)
    relabelled = replace(payment, balance_proof=replace(payment.balance_proof, chain_id=BETA))
    before = bob_beta.state
    with pytest.raises(PeerFault, match="signature"):
        bob_beta.feed(relabelled)
    assert bob_beta.state is before


def test_the_same_payment_is_accepted_on_its_own_chain() -> None:
    alice, bob = pair_on(BETA)
    bob.feed(signed_payment(alice))
    assert bob.state.partner_balance() == 900


def test_init_lists_further_chains_and_round_trips() -> None:
    init = wire.Init(1, b"", ALPHA, CONTRACT, wire.pack_chains([(BETA, OTHER_CONTRACT)]))
    decoded = wire.decode(wire.encode(init))
    assert decoded == init
    assert decoded.served() == [(ALPHA, CONTRACT), (BETA, OTHER_CONTRACT)]  # type: ignore[attr-defined]
    assert wire.Init(1, b"", ALPHA, CONTRACT).served() == [(ALPHA, CONTRACT)]


@pytest.mark.parametrize(("chains", "reason"), [
    (b"\x00" * 27, "whole number of 28-byte entries"),
    (wire.pack_chains([(ALPHA, OTHER_CONTRACT)]), "listed twice"),
    (wire.pack_chains([(BETA, CONTRACT), (BETA, OTHER_CONTRACT)]), "listed twice"),
    (wire.pack_chains([(0, OTHER_CONTRACT)]), "chain id 0"),
])
def test_bad_chain_lists_cannot_be_built_or_decoded(chains: bytes, reason: str) -> None:
    with pytest.raises(wire.InvalidMessage, match=reason):
        wire.Init(1, b"", ALPHA, CONTRACT, chains)
    fields = [wire.Init.TAG, wire.Init.VERSION, 1, b"", ALPHA, CONTRACT, chains]
    raw = msgpack.packb(fields, use_bin_type=True)
    with pytest.raises(wire.InvalidField, match=reason):
        wire.decode(raw)


def test_too_many_chains_are_refused() -> None:
    sixteen = wire.pack_chains([(n, OTHER_CONTRACT) for n in range(1, 17)])
    with pytest.raises(wire.InvalidMessage, match="bytes<=420"):
        wire.Init(1, b"", ALPHA, CONTRACT, sixteen)


def test_a_session_agrees_on_the_chains_both_sides_serve() -> None:
    node = wire.Init(1, b"", ALPHA, CONTRACT, wire.pack_chains([(BETA, CONTRACT)]))
    wallet_beta = wire.Init(1, b"", BETA, CONTRACT)
    other_contract = wire.Init(1, b"", BETA, OTHER_CONTRACT)
    peer_both = wire.Init(1, b"", BETA, CONTRACT, wire.pack_chains([(ALPHA, CONTRACT), (7, CONTRACT)]))
    assert agreed_chains(node, wallet_beta) == {(BETA, CONTRACT)}
    assert agreed_chains(node, other_contract) == frozenset()
    assert agreed_chains(node, peer_both) == {(ALPHA, CONTRACT), (BETA, CONTRACT)}
