"""The batch messages' own rules, and the batch CLI's refusals (one line, before any node is asked)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import msgpack
import pytest

from channeld import cli, wire

CHANNEL = bytes(range(32))
A1, A2 = bytes([0x11] * 20), bytes([0x22] * 20)
SIG = bytes(range(65))
ENTRY = wire.EntryTerms(A1, 3600, 10, 20, 0, 0, 5)
BRANCH = wire.MerkleBranch(1, 3, bytes([9] * 32), bytes([8] * 64))


def request(**changes: object) -> wire.BatchConsentRequest:
    fields: dict[str, object] = dict(chain_id=1, contract=A2, channel_id=CHANNEL, batch_id=CHANNEL,
                                     kind=wire.BATCH_WITHDRAW, scheme=wire.SCHEME_ECDSA, token=bytes(20),
                                     receiver=A2, expiry=10, entry=ENTRY, hub_signature=SIG,
                                     branch=wire.NO_BRANCH)
    fields.update(changes)
    return wire.BatchConsentRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("changes", [
    {"kind": 3}, {"scheme": 0}, {"receiver": bytes(20)},
    {"branch": BRANCH},  # ECDSA carries no branch
    {"scheme": wire.SCHEME_BLS},  # BLS needs one
])
def test_a_malformed_request_cannot_exist(changes: dict[str, object]) -> None:
    with pytest.raises(wire.InvalidMessage):
        request(**changes)


def test_branch_rules() -> None:
    assert request(scheme=wire.SCHEME_BLS, branch=BRANCH).branch.path == (bytes([8] * 32),) * 2
    for bad in ({"siblings": bytes(33)}, {"index": 3}):
        with pytest.raises(wire.InvalidMessage):
            replace(BRANCH, **bad)  # type: ignore[arg-type]


def test_bls_signature_and_key_come_together() -> None:
    wire.BatchConsent(CHANNEL, CHANNEL, SIG, bytes(96), bytes(48))
    for signature, key in ((bytes(96), b""), (b"", bytes(48)), (bytes(95), bytes(48))):
        with pytest.raises(wire.InvalidMessage):
            wire.BatchConsent(CHANNEL, CHANNEL, SIG, signature, key)


def test_a_decoded_request_breaking_a_rule_is_refused() -> None:
    fields = request().to_wire()
    fields[4] = 7  # kind
    with pytest.raises(wire.DecodeError):
        wire.decode(msgpack.packb([wire.BatchConsentRequest.TAG, 1, *fields], use_bin_type=True))
    assert wire.decode(wire.encode(request())) == request()


@pytest.mark.parametrize("argv", [
    ["withdraw", "--all", "0x" + "11" * 32],
    ["withdraw", "0x" + "11" * 32],
    ["close", "--all"],
    ["close", "--all", "--cooperative", "--force"],
    ["close"],
])
def test_batch_cli_refusals_are_one_line(argv: list[str], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--datadir", str(tmp_path), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("channeld ") and err.count("\n") == 1
