"""Solidity source of the channel contract and its compiled artifact (package data)."""
