"""The committed artifact is exactly what the pinned solc makes of the committed sources."""

from __future__ import annotations

import json

from channeld.contracts import build


def test_artifact_matches_a_fresh_compile() -> None:
    # The committed extension's hash is only a guess: it is kept only if the fresh extension hashes to it.
    fresh = build.render(build.compile_artifact(build.committed_codehash()))
    assert build.ARTIFACT_PATH.read_text() == fresh, "run `python -m channeld.contracts.build` and commit"


def test_artifact_pins_prague_and_the_optimizer() -> None:
    document = json.loads(build.ARTIFACT_PATH.read_text())
    assert document["solc"] == "0.8.37"
    assert document["settings"]["evmVersion"] == "prague"
    assert document["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert set(document["contracts"]) >= {
        "ChannelHub", "ChannelBatch", "SecretRegistry", "TestToken", "FeeOnTransferToken", "ReentrantToken"}


def test_the_hub_accepts_exactly_the_committed_extension_code() -> None:
    from eth_utils import keccak

    document = json.loads(build.ARTIFACT_PATH.read_text())
    codehash = keccak(bytes.fromhex(document["contracts"]["ChannelBatch"]["deployedBytecode"][2:]))
    assert codehash.hex() in document["contracts"]["ChannelHub"]["deployedBytecode"]
