"""The committed artifact is exactly what the pinned solc makes of the committed sources."""

from __future__ import annotations

import json

from channeld.contracts import build


def test_artifact_matches_a_fresh_compile() -> None:
    fresh = build.render(build.compile_artifact())
    assert build.ARTIFACT_PATH.read_text() == fresh, "run `python -m channeld.contracts.build` and commit"


def test_artifact_pins_prague_and_the_optimizer() -> None:
    document = json.loads(build.ARTIFACT_PATH.read_text())
    assert document["solc"] == "0.8.37"
    assert document["settings"]["evmVersion"] == "prague"
    assert document["settings"]["optimizer"] == {"enabled": True, "runs": 1_000_000}
    assert set(document["contracts"]) >= {"ChannelHub", "TestToken", "FeeOnTransferToken", "ReentrantToken"}
