"""The control API binds to loopback unless TLS is configured, and then serves HTTPS."""

from __future__ import annotations

import datetime
import ipaddress
import json
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from channeld.config import InvalidConfig, is_loopback, load_config
from tests.api.conftest import Network
from tests.node.helpers import Daemon, make_daemon


def test_a_non_loopback_api_needs_tls(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig) as info:
        load_config(tmp_path, {}, {"node.api": "0.0.0.0:9741"})
    assert info.value.key == "node.api" and "TLS" in str(info.value)
    with pytest.raises(InvalidConfig) as info:
        load_config(tmp_path, {}, {"node.api_tls_cert": "/x.crt"})
    assert info.value.key == "node.api_tls_key"
    both = {"node.api": "0.0.0.0:9741", "node.api_tls_cert": "/x.crt", "node.api_tls_key": "/x.key"}
    assert load_config(tmp_path, {}, both).node.api_tls_cert == "/x.crt"
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("10.0.0.1") and not is_loopback("example.org")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "channeld test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "api.crt", folder / "api.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class TlsDaemon(Daemon):
    tls: tuple[Path, Path]

    def argv(self) -> list[str]:
        cert, key = self.tls
        return [*super().argv(), "--set", f"node.api_tls_cert={cert}", "--set", f"node.api_tls_key={key}"]


def test_the_api_serves_https_with_the_configured_certificate(tmp_path: Path, network: Network) -> None:
    plain = make_daemon(tmp_path, "tls", network.anvil, network.a.contract, network.a.zygote)
    daemon = TlsDaemon(plain.datadir, plain.address, plain.node_id, plain.rpc_url, plain.contract,
                       plain.zygote)
    daemon.tls = _self_signed(tmp_path)
    daemon.start()
    try:
        runtime = json.loads((daemon.datadir / "node.json").read_text())
        assert runtime["api"] == f"https://127.0.0.1:{daemon.api}"
        assert daemon.call("GET", "/info")["node_id"] == daemon.node_id  # the CLI trusts that certificate
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{daemon.api}/api/v1/info", timeout=5)
        assert "with TLS" in daemon.log()
    finally:
        daemon.kill()
