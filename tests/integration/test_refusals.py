"""Refusals: peers that get something wrong, at the TLS layer (Python ssl and `openssl s_client`)
and at the gRPC layer (raw HTTP/2 frames from python3-h2), are refused cleanly. After every
refusal the next good call (a Ping through python3-grpcio) still works and the server process is
still alive.

Three servers serve the whole file: client_auth require (the default, with the CRL), optional
and none. Each test opens its own connections and depends on no other test's state.

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-h2, python3-protobuf)."""

import contextlib
import os
import re
import select
import socket
import ssl
import struct
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402

import harness  # noqa: E402

MAX_MESSAGE = 4 * 1024 * 1024

# TLS alert descriptions (RFC 8446 §6) by number, and the text OpenSSL gives the error it raises
# when it receives each one (Python's ssl does not know a reason name for every alert, e.g. 120).
ALERTS = {
    40: ("handshake_failure", "alert handshake failure"),
    42: ("bad_certificate", "alert bad certificate"),
    43: ("unsupported_certificate", "alert unsupported certificate"),
    44: ("certificate_revoked", "alert certificate revoked"),
    45: ("certificate_expired", "alert certificate expired"),
    46: ("certificate_unknown", "alert certificate unknown"),
    48: ("unknown_ca", "alert unknown ca"),
    70: ("protocol_version", "alert protocol version"),
    116: ("certificate_required", "alert certificate required"),
    120: ("no_application_protocol", "alert no application protocol"),
}


def alert_of(err):
    """The alert number an ssl.SSLError reports receiving, or None."""
    for number, (_, text) in ALERTS.items():
        if err is not None and text in str(err):
            return number
    return None

srv = None           # client_auth: require, with the CRL
srv_optional = None  # client_auth: optional
srv_none = None      # client_auth: none
msgs = None
observed = []        # (case, alert) lines for the summary at the end


def record(case, what):
    observed.append((case, what))
    print("  observed: %s -> %s" % (case, what), flush=True)


# ---- good calls after every refusal ----------------------------------------------------------


def ping_ok(server=None, name="admin"):
    """A good Ping through grpcio succeeds and the server process is alive."""
    server = server or srv
    with harness.grpc_channel(server.port, name) as ch:
        harness.unary(ch, msgs, "/bastion.v1.Mcp/Ping", msgs["bastion.v1.PingRequest"](),
                      "bastion.v1.PingResponse", timeout=10)
    assert server.alive(), "bastiond died:\n" + server.logs()[-4000:]


def grpc_call(server, name, method, request, response_type):
    with harness.grpc_channel(server.port, name) as ch:
        return harness.unary(ch, msgs, method, request, response_type, timeout=10)


def expect_code(code, fn, *args):
    try:
        fn(*args)
    except grpc.RpcError as e:
        assert e.code() == code, "expected %s, got %s: %s" % (code, e.code(), e.details())
        return e
    raise AssertionError("expected %s, the call succeeded" % code)


# ---- TLS helpers ------------------------------------------------------------------------------


def s_client(port, *args, name="admin", ign_eof=True):
    """Runs `openssl s_client` against the server with stdin at EOF; with ign_eof it keeps
    reading until the server closes, so that an alert sent after a TLS 1.3 handshake is seen.
    Returns (output, alert numbers it reports receiving)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost",
           "-CAfile", os.path.join(harness.certs(), "ca.crt")] + (["-ign_eof"] if ign_eof else [])
    if name is not None:
        c, k = harness.cert(name)
        cmd += ["-cert", c, "-key", k]
    cmd += list(args)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    out = p.stdout.decode("utf-8", "replace")
    return out, [int(n) for n in re.findall(r"SSL alert number (\d+)", out)]


def expect_s_client_alert(case, port, alert, *args, name="admin"):
    out, alerts = s_client(port, *args, name=name)
    record(case + " (openssl s_client)",
           ", ".join("%d %s" % (a, ALERTS.get(a, ("?",))[0]) for a in alerts) or "no alert")
    assert alerts == [alert], "expected alert %d %s, saw %r:\n%s" % (
        alert, ALERTS[alert][0], alerts, out[-3000:])
    return out


def read_until_closed(sock, timeout=5.0):
    """Reads from a TLS socket until the peer closes or fails it. Returns (bytes received,
    the ssl.SSLError that ended it or None). Raises if the connection stays open."""
    data = b""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ssl.SSLError as e:
            return data, e
        except (ConnectionResetError, BrokenPipeError):
            return data, None
        if not chunk:
            return data, None
        data += chunk
    raise AssertionError("the server kept the connection open; received %r" % data[:200])


def python_tls_refusal(case, port, name, alert, **kw):
    """Connects with Python's ssl; the refusal must be the given alert, either during the
    handshake or (TLS 1.3 client authentication) on the first read, with no HTTP/2 bytes."""
    try:
        sock = harness.tls_client(port, name, **kw)
    except ssl.SSLError as e:
        record(case + " (python ssl, in the handshake)", "%s (%s)" % (alert_of(e), e))
        assert alert_of(e) == alert, "expected alert %d, got %s" % (alert, e)
        return
    version = sock.version()
    with sock:
        data, err = read_until_closed(sock)
    record(case + " (python ssl, first read after a completed %s handshake)" % version,
           "%s (%s)" % (alert_of(err), err) if err else "closed without an alert")
    assert data == b"", "the server sent application data (SETTINGS?) %r" % data[:100]
    assert alert_of(err) == alert, "expected alert %d, got %r" % (alert, err)


def tls12():
    return {"maximum_version": ssl.TLSVersion.TLSv1_2}


# ---- TLS refusals -----------------------------------------------------------------------------


def test_tls13_without_client_cert_gets_certificate_required_116():
    python_tls_refusal("no client cert, TLS 1.3", srv.port, None, 116)
    expect_s_client_alert("no client cert, TLS 1.3", srv.port, 116, "-alpn", "h2", "-tls1_3",
                          name=None)
    ping_ok()


def test_tls12_without_client_cert_gets_handshake_failure_40():
    python_tls_refusal("no client cert, TLS 1.2", srv.port, None, 40, **tls12())
    expect_s_client_alert("no client cert, TLS 1.2", srv.port, 40, "-alpn", "h2", "-tls1_2",
                          name=None)
    ping_ok()


def test_cert_from_another_ca_gets_unknown_ca_48():
    python_tls_refusal("stranger (other CA)", srv.port, "stranger", 48)
    expect_s_client_alert("stranger (other CA)", srv.port, 48, "-alpn", "h2", name="stranger")
    expect_s_client_alert("stranger (other CA), TLS 1.2", srv.port, 48, "-alpn", "h2",
                          "-tls1_2", name="stranger")
    ping_ok()


def test_revoked_cert_gets_certificate_revoked_44():
    python_tls_refusal("revoked", srv.port, "revoked", 44)
    expect_s_client_alert("revoked", srv.port, 44, "-alpn", "h2", name="revoked")
    ping_ok()


def test_expired_cert_gets_certificate_expired_45():
    python_tls_refusal("expired", srv.port, "expired", 45)
    expect_s_client_alert("expired", srv.port, 45, "-alpn", "h2", name="expired")
    ping_ok()


def test_cert_without_client_auth_eku_gets_unsupported_certificate_43():
    python_tls_refusal("noeku (serverAuth only)", srv.port, "noeku", 43)
    expect_s_client_alert("noeku (serverAuth only)", srv.port, 43, "-alpn", "h2", name="noeku")
    ping_ok()


def test_tls11_gets_protocol_version_70():
    expect_s_client_alert("TLS 1.1", srv.port, 70, "-alpn", "h2", "-tls1_1", "-cipher",
                          "DEFAULT@SECLEVEL=0")
    ping_ok()


def test_tls12_cipher_outside_policy_gets_handshake_failure_40():
    expect_s_client_alert("TLS 1.2 AES128-SHA", srv.port, 40, "-alpn", "h2", "-tls1_2",
                          "-cipher", "AES128-SHA")
    expect_s_client_alert("TLS 1.2 ECDHE-ECDSA-AES128-SHA", srv.port, 40, "-alpn", "h2",
                          "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")
    ping_ok()


def test_no_alpn_is_closed_after_the_handshake_without_settings():
    sock = harness.tls_client(srv.port, "admin", alpn=None)
    with sock:
        assert sock.selected_alpn_protocol() is None
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        data, err = read_until_closed(sock)
    record("no ALPN (python ssl)", "closed, %d bytes, %s" % (
        len(data), err.reason if err else "no alert"))
    assert data == b"", "the server sent %r" % data[:100]
    out, alerts = s_client(srv.port)
    record("no ALPN (openssl s_client)", alerts or "no alert")
    assert alerts == [] and "No ALPN negotiated" in out, out[-3000:]
    ping_ok()


def test_alpn_http11_only_gets_no_application_protocol_120():
    python_tls_refusal("ALPN http/1.1 only", srv.port, "admin", 120, alpn=("http/1.1",))
    expect_s_client_alert("ALPN http/1.1 only", srv.port, 120, "-alpn", "http/1.1")
    ping_ok()


def test_good_client_still_connects_with_tls12_and_tls13():
    for kw in ({}, tls12()):
        with contextlib.closing(H2(srv.port, **kw)) as c:
            assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
            r = c.request("/bastion.v1.Mcp/Ping", frame(msgs["bastion.v1.PingRequest"]()))
            assert r.grpc_status == 0, r


def test_client_auth_optional_without_cert_is_unauthenticated():
    e = expect_code(grpc.StatusCode.UNAUTHENTICATED, grpc_call, srv_optional, None,
                    "/bastion.v1.Auth/WhoAmI", msgs["bastion.v1.WhoAmIRequest"](),
                    "bastion.v1.WhoAmIResponse")
    assert "client certificate is required" in e.details(), e.details()
    expect_code(grpc.StatusCode.UNAUTHENTICATED, grpc_call, srv_optional, None,
                "/bastion.v1.Mcp/Ping", msgs["bastion.v1.PingRequest"](),
                "bastion.v1.PingResponse")
    # With a good certificate the same server authenticates the caller.
    r = grpc_call(srv_optional, "viewer", "/bastion.v1.Auth/WhoAmI",
                  msgs["bastion.v1.WhoAmIRequest"](), "bastion.v1.WhoAmIResponse")
    assert r.principal.name == "spiffe://bastion.local/user/viewer", r
    # A certificate that is presented is still verified.
    expect_s_client_alert("client_auth optional, stranger", srv_optional.port, 48, "-alpn",
                          "h2", name="stranger")
    ping_ok(srv_optional)


def test_client_auth_none_does_not_request_a_certificate():
    out, alerts = s_client(srv_none.port, "-alpn", "h2", "-msg", ign_eof=False)
    assert alerts == [] and "CertificateRequest" not in out, out[-3000:]
    assert "Verify return code: 0 (ok)" in out, out[-3000:]
    # The require server does request one (the check above means something).
    out, _ = s_client(srv.port, "-alpn", "h2", "-msg", ign_eof=False)
    assert "CertificateRequest" in out, out[-3000:]
    record("client_auth none", "no CertificateRequest sent")
    e = expect_code(grpc.StatusCode.UNAUTHENTICATED, grpc_call, srv_none, "admin",
                    "/bastion.v1.Auth/WhoAmI", msgs["bastion.v1.WhoAmIRequest"](),
                    "bastion.v1.WhoAmIResponse")
    assert "authenticated caller" in e.details(), e.details()
    r = grpc_call(srv_none, "admin", "/grpc.health.v1.Health/Check",
                  msgs["grpc.health.v1.HealthCheckRequest"](), "grpc.health.v1.HealthCheckResponse")
    assert r.status == 1, r
    assert srv_none.alive()
    ping_ok()


# ---- raw HTTP/2 -------------------------------------------------------------------------------


def frame(message_or_bytes, flag=0, length=None):
    """A gRPC length-prefixed message; length overrides the declared length."""
    body = message_or_bytes if isinstance(message_or_bytes, bytes) else \
        message_or_bytes.SerializeToString()
    return struct.pack(">BI", flag, len(body) if length is None else length) + body


class Response:
    def __init__(self):
        self.headers = {}
        self.trailers = {}
        self.raw_headers = []
        self.data = b""
        self.ended = False
        self.reset = None
        self.elapsed = None

    @property
    def status(self):
        return self.headers.get(b":status")

    @property
    def grpc_status(self):
        v = self.trailers.get(b"grpc-status", self.headers.get(b"grpc-status"))
        return int(v) if v is not None else None

    @property
    def grpc_message_raw(self):
        return self.trailers.get(b"grpc-message", self.headers.get(b"grpc-message", b""))

    @property
    def grpc_message(self):
        return urllib.parse.unquote_to_bytes(self.grpc_message_raw).decode("utf-8")

    def __repr__(self):
        return "<Response %r %r data=%r reset=%r>" % (self.headers, self.trailers,
                                                      self.data[:60], self.reset)


class H2:
    """A raw HTTP/2 client over a TLS socket from harness.tls_client."""

    def __init__(self, port, name="admin", **tls_kw):
        self.sock = harness.tls_client(port, name, **tls_kw)
        assert self.sock.selected_alpn_protocol() == "h2"
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        self.responses = {}
        self.terminated = None
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        self.sock.close()

    def start(self, path, method="POST", content_type="application/grpc", extra=(),
              end_stream=False):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "https"), (":path", path),
                (":authority", "localhost")]
        if content_type is not None:
            hdrs.append(("content-type", content_type))
        hdrs.append(("te", "trailers"))
        hdrs.extend(extra)
        self.responses[sid] = Response()
        self.responses[sid].stream_id = sid
        self.conn.send_headers(sid, hdrs, end_stream=end_stream)
        return sid

    def request(self, path, body, end_stream=True, timeout=5, **kw):
        """Sends one request (body None: HEADERS with END_STREAM) and waits for its end."""
        t0 = time.monotonic()
        sid = self.start(path, end_stream=body is None, **kw)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end_stream)
        self.flush()
        r = self.wait(sid, timeout)
        r.elapsed = time.monotonic() - t0
        return r

    def wait(self, sid, timeout=5, for_reset=False):
        """Reads until the response on stream sid ended (or, with for_reset, until the server
        reset the stream)."""
        r = self.responses[sid]
        deadline = time.monotonic() + timeout
        while not (r.reset is not None or (r.ended and not for_reset)):
            left = deadline - time.monotonic()
            assert left > 0, "no complete response on stream %d within %ss: %r" % (sid, timeout, r)
            if self.sock.pending() == 0:
                ready, _, _ = select.select([self.sock], [], [], left)
                if not ready:
                    continue
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed while waiting for stream %d: %r" % (sid, r)
            self.feed(chunk)
        return r

    def feed(self, chunk):
        for ev in self.conn.receive_data(chunk):
            r = self.responses.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived):
                r.raw_headers.extend(ev.headers)
                r.headers.update(dict(ev.headers))
            elif isinstance(ev, h2.events.TrailersReceived):
                r.raw_headers.extend(ev.headers)
                r.trailers.update(dict(ev.headers))
            elif isinstance(ev, h2.events.DataReceived):
                r.data += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                r.ended = True
            elif isinstance(ev, h2.events.StreamReset):
                if r is not None:
                    r.reset = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.terminated = ev
        self.flush()


@contextlib.contextmanager
def h2_client(name="admin"):
    """An HTTP/2 connection; on leaving, the same connection must still serve a good Ping, and
    then a fresh grpcio client must too."""
    c = H2(srv.port, name)
    try:
        yield c
        r = c.request("/bastion.v1.Mcp/Ping", frame(msgs["bastion.v1.PingRequest"]()))
        assert r.status == b"200" and r.grpc_status == 0, "good Ping after the refusal: %r" % r
        assert c.terminated is None, c.terminated
    finally:
        c.close()
    ping_ok()


def expect_grpc(r, code, message_part=None):
    assert r.status == b"200", "no HTTP 200 response (only a RST_STREAM?): %r" % r
    assert r.grpc_status == code, "expected grpc-status %d, got %r (%s)" % (
        code, r.grpc_status, r.grpc_message_raw)
    if message_part is not None:
        assert message_part in r.grpc_message, "%r not in %r" % (message_part, r.grpc_message)
    return r


def call_tool_bytes(name_bytes, ns_bytes=b"default"):
    """A CallToolRequest with a raw name (field 1) and list_pods (field 10) with a raw
    namespace (field 1) set; protobuf's Python classes would refuse invalid UTF-8."""
    args = b"\x0a" + bytes([len(ns_bytes)]) + ns_bytes
    return (b"\x0a" + bytes([len(name_bytes)]) + name_bytes +
            b"\x52" + bytes([len(args)]) + args)


PING = "/bastion.v1.Mcp/Ping"


def test_oversized_message_is_resource_exhausted_without_waiting_for_the_body():
    with h2_client() as c:
        body = struct.pack(">BI", 0, 5 * 1024 * 1024) + b"\0" * 1000
        r = c.request(PING, body, end_stream=False, timeout=3)
        expect_grpc(r, 8, "exceeds the limit")
        assert r.elapsed < 2, "the server took %.1fs: it waited for the body" % r.elapsed
        # The complete response came first; then the server asks us to stop sending, without
        # error (RFC 9113 section 8.1).
        assert r.ended, r
        c.wait(r.stream_id, for_reset=True)
        assert r.reset == 0, r


def test_unknown_field_is_invalid_argument_naming_the_field_number():
    with h2_client() as c:
        # Field 99, varint 1: tag (99 << 3 | 0) = 792 = 0x98 0x06.
        r = c.request(PING, frame(b"\x98\x06\x01"))
        expect_grpc(r, 3, "99")
        # And inside a nested message: ListPodsArgs with field 7 (varint 1).
        args = msgs["bastion.v1.ListPodsArgs"](namespace="default").SerializeToString() + \
            b"\x38\x01"
        body = b"\x0a\x09list_pods\x52" + bytes([len(args)]) + args
        r = c.request("/bastion.v1.Mcp/CallTool", frame(body))
        expect_grpc(r, 3, "7")


def test_invalid_utf8_in_a_string_is_invalid_argument():
    with h2_client() as c:
        r = c.request("/bastion.v1.Mcp/CallTool", frame(call_tool_bytes(b"list_\xc3\x28pods")))
        expect_grpc(r, 3, "UTF-8")
        r = c.request("/bastion.v1.Mcp/CallTool",
                      frame(call_tool_bytes(b"list_pods", ns_bytes=b"def\xffault")))
        expect_grpc(r, 3, "UTF-8")
        assert "namespace" in r.grpc_message, r.grpc_message


def test_unknown_method_is_unimplemented():
    with h2_client() as c:
        r = c.request("/bastion.v1.Mcp/Nope", frame(b""))
        expect_grpc(r, 12)


def test_paths_are_not_normalised():
    with h2_client() as c:
        for path in ("/bastion.v1.Mcp/Ping/", "//bastion.v1.Mcp/Ping", "/bastion.v1.mcp/ping",
                     "/bastion.v1.Mcp%2FPing", "/bastion.v1.Mcp/Ping?x=1",
                     "/bastion.v1.Mcp/./Ping", "/bastion.v1.Mcp/Ping#", "/BASTION.V1.MCP/PING"):
            r = c.request(path, frame(b""))
            assert r.grpc_status == 12, "%s: %r" % (path, r)


def test_wrong_content_type_is_http_415():
    with h2_client() as c:
        r = c.request(PING, b"{}", content_type="application/json")
        assert r.status == b"415", r
        assert r.grpc_status is None, r


def test_get_is_http_405():
    with h2_client() as c:
        r = c.request(PING, None, method="GET", content_type=None)
        assert r.status == b"405", r
        r = c.request(PING, None, method="GET", content_type="text/html")
        assert r.status == b"405", r


def test_get_with_grpc_content_type_is_refused():
    # A gRPC content type gets a gRPC answer (see grpc.h): UNIMPLEMENTED, never a call.
    with h2_client() as c:
        r = c.request(PING, None, method="GET")
        expect_grpc(r, 12, "POST")


def test_compressed_flag_without_grpc_encoding_is_internal():
    with h2_client() as c:
        r = c.request(PING, frame(b"", flag=1))
        expect_grpc(r, 13, "compressed")


def test_compressed_flag_2_is_internal():
    with h2_client() as c:
        r = c.request(PING, frame(b"", flag=2))
        expect_grpc(r, 13, "compressed-flag")


def test_grpc_encoding_gzip_is_unimplemented():
    with h2_client() as c:
        r = c.request(PING, frame(b"", flag=1), extra=[("grpc-encoding", "gzip")])
        expect_grpc(r, 12, "grpc-encoding")


def test_length_prefix_longer_than_the_data_is_internal():
    with h2_client() as c:
        r = c.request(PING, frame(b"\x98\x06", length=10))
        expect_grpc(r, 13, "truncated")
        r = c.request(PING, b"\0\0\0")  # not even a whole prefix
        expect_grpc(r, 13)


def test_two_messages_in_a_unary_call_is_internal():
    with h2_client() as c:
        r = c.request(PING, frame(b"") + frame(b""))
        expect_grpc(r, 13, "more than one")


def test_zero_messages_in_a_unary_call_is_internal():
    with h2_client() as c:
        r = c.request(PING, None)
        expect_grpc(r, 13, "no request message")
        r = c.request(PING, b"")
        expect_grpc(r, 13, "no request message")


def test_grpc_timeout_1n_is_deadline_exceeded():
    with h2_client() as c:
        r = c.request(PING, frame(b""), extra=[("grpc-timeout", "1n")])
        expect_grpc(r, 4)


def test_grpc_timeout_malformed_is_internal():
    with h2_client() as c:
        for v in ("123456789S", "10x", "S", "-1S", "1.5S", ""):
            r = c.request(PING, frame(b""), extra=[("grpc-timeout", v)])
            assert r.grpc_status == 13, "%r: %r" % (v, r)


def test_grpc_timeout_5s_is_fine():
    with h2_client() as c:
        for v in ("5S", "99999999S", "1H"):
            r = c.request(PING, frame(b""), extra=[("grpc-timeout", v)])
            expect_grpc(r, 0)
            assert r.data == frame(b""), r


def test_grpc_message_escapes_control_characters():
    with h2_client() as c:
        evil = "\x1b[31mevil\nname\r\x7f\u0085"
        r = c.request("/bastion.v1.Mcp/CallTool", frame(call_tool_bytes(evil.encode())))
        expect_grpc(r, 3)
        raw = r.grpc_message_raw
        assert raw, r
        assert all(0x20 <= b < 0x7f for b in raw), "raw grpc-message has bytes outside " \
            "0x20..0x7e: %r" % raw
        text = r.grpc_message
        assert not any(ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f for ch in text), repr(text)
        assert "evil" in text and "disagrees" in text, text
        record("grpc-message for a name with ESC, LF, CR, DEL, NEL", raw.decode())


def test_garbage_instead_of_the_preface_closes_the_connection():
    sock = harness.tls_client(srv.port, "admin")
    with sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" + bytes(range(256)))
        data, err = read_until_closed(sock)
    assert b"HTTP/1.1" not in data, data
    record("garbage preface", "closed after %d bytes (%s)" % (
        len(data), err.reason if err else "EOF"))
    ping_ok()


def test_server_is_alive_at_the_end():
    for s in (srv, srv_optional, srv_none):
        assert s.alive(), s.logs()[-4000:]
    ping_ok()


def run(servers, tests):
    """harness.run_tests, returning its exit code so that the servers are stopped (and their exit
    codes checked) before this process exits; the logs are shown when a test failed."""
    try:
        harness.run_tests(tests)
    except SystemExit as e:
        if e.code:
            for s in servers:
                sys.stderr.write("--- bastiond log (%s) ---\n%s\n" % (s.dir, s.logs()[-6000:]))
        return e.code
    return 0


def main():
    global srv, srv_optional, srv_none, msgs
    msgs = harness.Messages()
    with harness.Server(limits={"max_message_bytes": "4MiB"}) as a, \
            harness.Server(client_auth="optional") as b, \
            harness.Server(client_auth="none",
                           extra=["auth:", "  require_client_certificate: false"]) as n:
        srv, srv_optional, srv_none = a, b, n
        code = run((a, b, n), [
            test_tls13_without_client_cert_gets_certificate_required_116,
            test_tls12_without_client_cert_gets_handshake_failure_40,
            test_cert_from_another_ca_gets_unknown_ca_48,
            test_revoked_cert_gets_certificate_revoked_44,
            test_expired_cert_gets_certificate_expired_45,
            test_cert_without_client_auth_eku_gets_unsupported_certificate_43,
            test_tls11_gets_protocol_version_70,
            test_tls12_cipher_outside_policy_gets_handshake_failure_40,
            test_no_alpn_is_closed_after_the_handshake_without_settings,
            test_alpn_http11_only_gets_no_application_protocol_120,
            test_good_client_still_connects_with_tls12_and_tls13,
            test_client_auth_optional_without_cert_is_unauthenticated,
            test_client_auth_none_does_not_request_a_certificate,
            test_oversized_message_is_resource_exhausted_without_waiting_for_the_body,
            test_unknown_field_is_invalid_argument_naming_the_field_number,
            test_invalid_utf8_in_a_string_is_invalid_argument,
            test_unknown_method_is_unimplemented,
            test_paths_are_not_normalised,
            test_wrong_content_type_is_http_415,
            test_get_is_http_405,
            test_get_with_grpc_content_type_is_refused,
            test_compressed_flag_without_grpc_encoding_is_internal,
            test_compressed_flag_2_is_internal,
            test_grpc_encoding_gzip_is_unimplemented,
            test_length_prefix_longer_than_the_data_is_internal,
            test_two_messages_in_a_unary_call_is_internal,
            test_zero_messages_in_a_unary_call_is_internal,
            test_grpc_timeout_1n_is_deadline_exceeded,
            test_grpc_timeout_malformed_is_internal,
            test_grpc_timeout_5s_is_fine,
            test_grpc_message_escapes_control_characters,
            test_garbage_instead_of_the_preface_closes_the_connection,
            test_server_is_alive_at_the_end,
        ])
    print("TLS and protocol refusals observed:")
    for case, what in observed:
        print("  %s: %s" % (case, what))
    sys.exit(code)


if __name__ == "__main__":
    main()
