"""The chain: contract bindings, backends, event follower and transaction sender."""
