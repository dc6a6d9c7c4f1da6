"""The gate's credential in GitHub Actions: a fresh GitHub OIDC assertion for every Azure token.

A local server plays both ends, as the real services answer: GitHub's token endpoint
(``ACTIONS_ID_TOKEN_REQUEST_URL``, plain HTTP here) and the Entra token endpoint over HTTPS with
a self-signed certificate (azure-identity refuses a non-https authority), reached through
``AZURE_AUTHORITY_HOST``. The real ``ClientAssertionCredential`` does the exchange.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.errors import GateError
from infra.gate.credentials import GITHUB_AUDIENCE, gate_credential

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
REQUEST_TOKEN = "actions-request-token"


class Endpoints:
    """GitHub's OIDC token endpoint and Entra's token endpoint, recording what they saw."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.github: list[dict[str, Any]] = []
        self.entra: list[dict[str, list[str]]] = []
        self.gh = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.aad = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.aad.socket = context.wrap_socket(self.aad.socket, server_side=True)
        self._threads = [threading.Thread(target=s.serve_forever, args=(0.02,), daemon=True)
                         for s in (self.gh, self.aad)]

    def __enter__(self) -> Endpoints:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for s in (self.gh, self.aad):
            s.shutdown()
            s.server_close()

    @property
    def request_url(self) -> str:
        return f"http://127.0.0.1:{self.gh.server_address[1]}/_apis/token?api-version=2.0"

    @property
    def authority(self) -> str:
        return f"https://127.0.0.1:{self.aad.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        ends = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # GitHub: a new JWT per call
                parts = urlsplit(self.path)
                ends.github.append({"query": parse_qs(parts.query),
                                    "auth": self.headers.get("Authorization")})
                if self.headers.get("Authorization") != f"bearer {REQUEST_TOKEN}":
                    return self._json(401, {"message": "bad request token"})
                self._json(200, {"value": f"github-oidc-jwt-{len(ends.github)}"})

            def do_POST(self) -> None:  # Entra: client credentials with a client assertion
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                ends.entra.append({**form, "path": [self.path]})
                self._json(200, {"access_token": f"entra-token-{len(ends.entra)}",
                                 "expires_in": 3600, "token_type": "Bearer"})

        return Handler


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def endpoints(certificate: tuple[Path, Path]) -> Iterator[Endpoints]:
    with Endpoints(*certificate) as ends:
        yield ends


def actions_env(ends: Endpoints) -> dict[str, str]:
    return {"ACTIONS_ID_TOKEN_REQUEST_URL": ends.request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
            "AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT,
            "AZURE_AUTHORITY_HOST": ends.authority}


def test_in_actions_every_azure_token_gets_a_fresh_github_assertion(
    endpoints: Endpoints, certificate: tuple[Path, Path]
) -> None:
    from azure.identity import ClientAssertionCredential

    credential = gate_credential("https://management.azure.com", actions_env(endpoints),
                                 connection_verify=str(certificate[0]))
    assert isinstance(credential, ClientAssertionCredential)
    arm = credential.get_token("https://management.azure.com/.default")
    logs = credential.get_token("https://api.loganalytics.io/.default")
    assert (arm.token, logs.token) == ("entra-token-1", "entra-token-2")
    # two Azure tokens, two GitHub assertions: none is reused past its ~10 minutes
    assert [g["query"]["audience"] for g in endpoints.github] == [[GITHUB_AUDIENCE]] * 2
    assert [g["query"]["api-version"] for g in endpoints.github] == [["2.0"]] * 2
    assertions = [e["client_assertion"] for e in endpoints.entra]
    assert assertions == [["github-oidc-jwt-1"], ["github-oidc-jwt-2"]]
    first = endpoints.entra[0]
    assert first["path"] == [f"/{TENANT}/oauth2/v2.0/token"]
    assert first["client_id"] == [CLIENT] and first["grant_type"] == ["client_credentials"]
    assert first["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]


def test_a_refused_github_request_is_an_authentication_error(
    endpoints: Endpoints, certificate: tuple[Path, Path]
) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    from infra.gate.transport import is_transient

    env = {**actions_env(endpoints), "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "wrong"}
    credential = gate_credential("https://management.azure.com", env,
                                 connection_verify=str(certificate[0]))
    with pytest.raises(ClientAuthenticationError) as info:
        credential.get_token("https://management.azure.com/.default")
    assert not is_transient(info.value)  # never retried to the deadline
    assert endpoints.entra == []


def test_actions_without_the_client_names_fails_before_anything_starts() -> None:
    env = {"ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/x", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}
    with pytest.raises(GateError) as info:
        gate_credential("https://management.azure.com", env)
    assert info.value.code == "start-failed" and "AZURE_CLIENT_ID" in info.value.message


def test_outside_actions_the_default_chain_with_the_clouds_authority() -> None:
    from azure.identity import DefaultAzureCredential

    credential = gate_credential("https://management.chinacloudapi.cn", {})
    assert isinstance(credential, DefaultAzureCredential)
