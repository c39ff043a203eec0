"""core.outbound: a session pinned to a checked address connects there, while the Host
header, TLS SNI and the certificate's verification stay on the URL's host name."""

import datetime as dt
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.outbound import OutboundSession

HOST = "hooks.example.com"  # resolves nowhere here: only the pinned address can be reached


def _certificate(directory, name: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


class Server:
    """An HTTPS server on 127.0.0.1 with a certificate for `name`; keeps the Host headers and
    the names asked for in TLS (SNI)."""

    def __init__(self, directory, name: str):
        self.hosts: list[str] = []
        self.server_names: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hosts.append(self.headers["Host"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.certificate, key = _certificate(directory, name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, key)
        context.sni_callback = lambda sock, sni, ctx: self.server_names.append(sni)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    started = Server(tmp_path, HOST)
    yield started
    started.stop()


def _get(server, certificate: str):
    with OutboundSession(deadline=5, address="127.0.0.1") as session:
        session.verify = certificate
        return session.get(f"https://{HOST}:{server.port}/", timeout=(2, 2))


def test_a_pinned_session_connects_to_the_address_with_the_host_name_in_tls_and_http(server):
    response = _get(server, server.certificate)

    assert response.status_code == 204
    assert server.hosts == [f"{HOST}:{server.port}"]
    assert server.server_names == [HOST]


def test_the_certificate_is_still_checked_against_the_host_name(tmp_path):
    # The address answers with a valid certificate, but for another name.
    other = Server(tmp_path, "other.example.org")
    try:
        with pytest.raises(requests.exceptions.SSLError):
            _get(other, other.certificate)
    finally:
        other.stop()
    assert other.hosts == []
