"""The library face of channeld for programs that are not the node: payment requests, webhook checks,
and the `Wallet` (a channel peer without a daemon, built on the node's own channel service)."""

from channeld.client._payreq import BadPaymentRequest, PaymentRequest
from channeld.client._webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRejected,
    WebhookVerifier,
    sign,
    signed_headers,
)

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "BadPaymentRequest",
    "PaymentRequest",
    "WebhookRejected",
    "WebhookVerifier",
    "sign",
    "signed_headers",
]
