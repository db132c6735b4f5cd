"""Baileys' downloads (media, history-sync and app-state blobs) use the global fetch with an undici dispatcher
(``options.dispatcher``), not the websocket's agent: the worker's dispatcher (node_worker/src/proxy.js) must
reach an HTTPS server through the test's CONNECT and SOCKS5 proxies, with their credentials, the TLS
handshake end to end through the tunnel (the emulator serves no downloads, so a local HTTPS server stands in)."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import ssl
import subprocess
import threading

import pytest

from tests.helpers.connect_proxy import ConnectProxy
from tests.helpers.socks5_proxy import Socks5Proxy
from tests.helpers.stack import REPO

pytestmark = pytest.mark.system

FETCH = """
import { connectionProxy, parseProxyUrl } from './src/proxy.js'
const proxy = connectionProxy({ dataDir: '/nonexistent', proxy: parseProxyUrl(process.env.PROXY) }, 'default')
const res = await fetch(process.env.TARGET, { dispatcher: proxy.dispatcher })
console.log(JSON.stringify({ status: res.status, body: await res.text() }))
"""


class _Blob(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server spelling
        body = b"encrypted media blob"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test server's certificate")
    tmp = tmp_path_factory.mktemp("tls")
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Blob)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], cert
    server.shutdown()


def fetch(proxy_url: str, target: str, ca: os.PathLike) -> dict:
    done = subprocess.run(["node", "--input-type=module", "-e", FETCH], cwd=REPO / "node_worker", timeout=60,
                          env={**os.environ, "PROXY": proxy_url, "TARGET": target, "NODE_EXTRA_CA_CERTS": str(ca)},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("proxy_class,scheme", [(ConnectProxy, "http"), (Socks5Proxy, "socks5"),
                                                (Socks5Proxy, "socks5h")])
def test_downloads_go_through_the_proxy(https_server, proxy_class, scheme):
    port, cert = https_server
    with proxy_class("dl", "d0wnload-Pw") as proxy:
        url = proxy.url().replace(f"{proxy.scheme}://", f"{scheme}://")
        answer = fetch(url, f"https://localhost:{port}/mms/image/blob", cert)
        assert answer == {"status": 200, "body": "encrypted media blob"}
        assert proxy.carried(port) == 1, proxy.connections
        assert proxy.auth_failures == 0
        # a wrong password: no download, and the proxy saw the attempt
        done = subprocess.run(["node", "--input-type=module", "-e", FETCH], cwd=REPO / "node_worker", timeout=60,
                              env={**os.environ, "PROXY": proxy.url("dl", "wrong"),
                                   "TARGET": f"https://localhost:{port}/", "NODE_EXTRA_CA_CERTS": str(cert)},
                              capture_output=True, text=True)
        assert done.returncode != 0 and proxy.carried(port) == 1 and proxy.auth_failures == 1
