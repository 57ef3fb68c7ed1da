"""channeld: a payment-channel node for Ethereum and any EVM chain."""

__version__ = "0.1.0"
