"""libbastion against a hostile (or merely odd) gRPC server.

A small HTTP/2 server written with python3-h2 plays each scenario: it answers with a missing or
malformed grpc-status, an oversized length prefix, a compressed message, two messages, control
characters in grpc-message, an HTTP error, refused streams, GOAWAY, garbage bytes and oversized
headers. The C side is build/bin/client_driver. The library must refuse each answer with a
clear status and stay usable; and what it sends (credentials, metadata, grpc-timeout) is
checked on the wire. In the spirit of gRPC's test/core/bad_client.

Run with Debian's /usr/bin/python3 (python3-h2, python3-hpack)."""

import os
import re
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.errors  # noqa: E402
import h2.events  # noqa: E402
import hpack  # noqa: E402

import harness  # noqa: E402
from test_client import Driver, pki  # noqa: E402

GRPC_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]
EMPTY_MESSAGE = b"\x00\x00\x00\x00\x00"  # a PingResponse {}


class HostileServer:
    """A TLS + HTTP/2 server whose answer to every request is chosen by `scenario`."""

    def __init__(self):
        self.scenario = "echo"
        self.requests = []  # (headers as a list of (name, value, never_indexed)), in order
        self.connections = 0
        self.lock = threading.Lock()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki("server.crt"), pki("server.key"))
        ctx.load_verify_locations(pki("ca.crt"))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["h2"])
        self.ctx = ctx
        # The same server without ALPN: an HTTP/1.1-only TLS endpoint.
        plain = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        plain.load_cert_chain(pki("server.crt"), pki("server.key"))
        self.ctx_no_alpn = plain
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.stopping:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(raw,), daemon=True).start()

    def serve(self, raw):
        try:
            ctx = self.ctx_no_alpn if self.scenario == "no_alpn" else self.ctx
            conn_sock = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        with self.lock:
            self.connections += 1
            conn_no = self.connections
        scenario = self.scenario
        if scenario == "no_alpn":
            time.sleep(0.5)
            conn_sock.close()
            return
        if scenario == "garbage":
            conn_sock.sendall(b"\xff" * 64)
            time.sleep(0.5)
            conn_sock.close()
            return
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8", validate_outbound_headers=False,
            normalize_outbound_headers=False))
        h2c.initiate_connection()
        conn_sock.sendall(h2c.data_to_send())
        heads = {}
        try:
            while True:
                data = conn_sock.recv(65536)
                if not data:
                    return
                for ev in h2c.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        heads[ev.stream_id] = [
                            (h[0], h[1], isinstance(h, hpack.NeverIndexedHeaderTuple))
                            for h in ev.headers]
                    elif isinstance(ev, h2.events.DataReceived):
                        h2c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        with self.lock:
                            self.requests.append(heads.get(ev.stream_id, []))
                        if self.answer(h2c, conn_sock, ev.stream_id, self.scenario, conn_no):
                            return
                conn_sock.sendall(h2c.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            return
        finally:
            try:
                conn_sock.close()
            except OSError:
                pass

    def answer(self, h2c, sock, sid, scenario, conn_no):
        """Sends the scenario's answer; returns True to close the connection."""
        if scenario == "echo":
            h2c.send_headers(sid, GRPC_HEADERS)
            h2c.send_data(sid, EMPTY_MESSAGE)
            h2c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
        elif scenario == "no_status":
            h2c.send_headers(sid, GRPC_HEADERS)
            h2c.send_data(sid, EMPTY_MESSAGE)
            h2c.send_headers(sid, [("x-nothing", "here")], end_stream=True)
        elif scenario == "bad_status":
            h2c.send_headers(sid, GRPC_HEADERS)
            h2c.send_headers(sid, [("grpc-status", "0x1")], end_stream=True)
        elif scenario == "huge_prefix":
            h2c.send_headers(sid, GRPC_HEADERS)
            h2c.send_data(sid, b"\x00\x7f\xff\xff\xff" + b"x" * 100)
        elif scenario == "compressed":
            h2c.send_headers(sid, GRPC_HEADERS + [("grpc-encoding", "gzip")])
            h2c.send_data(sid, b"\x01\x00\x00\x00\x00")
            h2c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
        elif scenario == "two_messages":
            h2c.send_headers(sid, GRPC_HEADERS)
            h2c.send_data(sid, EMPTY_MESSAGE + EMPTY_MESSAGE)
            h2c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
        elif scenario == "truncated":
            h2c.send_headers(sid, GRPC_HEADERS)
            h2c.send_data(sid, b"\x00\x00\x00\x00\x10abc")
            h2c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
        elif scenario == "ok_without_message":
            h2c.send_headers(sid, GRPC_HEADERS + [("grpc-status", "0")], end_stream=True)
        elif scenario == "bad_protobuf":
            h2c.send_headers(sid, GRPC_HEADERS)
            h2c.send_data(sid, b"\x00\x00\x00\x00\x02\x0a\x05")  # a field longer than the data
            h2c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
        elif scenario == "evil_message":
            h2c.send_headers(sid, GRPC_HEADERS + [
                ("grpc-status", "3"),
                ("grpc-message", "%1B[31mred%0Aline%07 100%25 %zz"),
                ("x-request-id", "feedfacefeedfacefeedfacefeedface")], end_stream=True)
        elif scenario == "http_503":
            h2c.send_headers(sid, [(":status", "503"), ("content-type", "text/plain")])
            h2c.send_data(sid, b"overloaded", end_stream=True)
        elif scenario == "html_200":
            h2c.send_headers(sid, [(":status", "200"), ("content-type", "text/html")])
            h2c.send_data(sid, b"<html></html>", end_stream=True)
        elif scenario == "big_headers":
            h2c.send_headers(sid, GRPC_HEADERS + [("x-big", "b" * 20000)])
            h2c.send_data(sid, EMPTY_MESSAGE)
            h2c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
        elif scenario in ("refuse_once", "refuse_always"):
            with self.lock:
                first = len(self.requests) == 1
            if scenario == "refuse_always" or first:
                h2c.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            else:
                return self.answer(h2c, sock, sid, "echo", conn_no)
        elif scenario == "goaway_once":
            if conn_no == 1:
                # Nothing processed: every stream of this connection may be retried elsewhere.
                h2c.close_connection(last_stream_id=0)
                sock.sendall(h2c.data_to_send())
                return True
            return self.answer(h2c, sock, sid, "echo", conn_no)
        elif scenario == "rst_cancel":
            h2c.send_headers(sid, GRPC_HEADERS)
            h2c.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        elif scenario == "close":
            return True
        else:
            raise AssertionError("unknown scenario " + scenario)
        sock.sendall(h2c.data_to_send())
        return False

    def reset(self, scenario):
        with self.lock:
            self.scenario = scenario
            self.requests = []
            self.connections = 0

    def stop(self):
        self.stopping = True
        self.sock.close()


srv = None


def driver(extra=()):
    return Driver(srv.port, extra=list(extra))


def expect(scenario, status, *words, opts=""):
    srv.reset(scenario)
    with driver() as d:
        r = d.ping(opts)
        assert r[0] == status, (scenario, r)
        for w in words:
            assert w in r[2], (scenario, w, r)
        # The channel survives every hostile answer.
        srv.reset("echo")
        assert d.ping() == ("OK", {}), scenario
    return r


def test_well_formed_answer_is_ok():
    srv.reset("echo")
    with driver() as d:
        assert d.ping() == ("OK", {})


def test_missing_grpc_status_is_a_protocol_error():
    expect("no_status", "E_PROTOCOL", "without grpc-status")


def test_malformed_grpc_status_is_a_protocol_error():
    expect("bad_status", "E_PROTOCOL", "malformed grpc-status")


def test_oversized_length_prefix_is_resource_exhausted():
    expect("huge_prefix", "RESOURCE_EXHAUSTED", "exceeds the limit")


def test_compressed_message_is_refused():
    expect("compressed", "E_PROTOCOL", "compress")


def test_two_messages_in_a_unary_answer_are_refused():
    expect("two_messages", "E_PROTOCOL", "more than one response message")


def test_truncated_message_is_refused():
    expect("truncated", "E_PROTOCOL", "truncated")


def test_ok_without_a_message_is_refused():
    expect("ok_without_message", "E_PROTOCOL", "without a response message")


def test_undecodable_protobuf_is_refused():
    expect("bad_protobuf", "E_PROTOCOL", "not a valid bastion.v1.PingResponse")


def test_grpc_message_is_percent_decoded_and_sanitised():
    r = expect("evil_message", "INVALID_ARGUMENT")
    assert r[1] == "feedfacefeedfacefeedfacefeedface", r
    assert r[2] == "?[31mred?line? 100% %zz", repr(r[2])


def test_http_error_without_grpc_status_maps_to_a_grpc_code():
    expect("http_503", "UNAVAILABLE", "HTTP 503")


def test_non_grpc_200_is_refused():
    expect("html_200", "E_PROTOCOL", "not gRPC")


def test_oversized_response_headers_are_refused():
    expect("big_headers", "RESOURCE_EXHAUSTED", "too large")


def test_stream_reset_by_the_server_maps_its_code():
    expect("rst_cancel", "CANCELLED", "CANCEL")


def test_refused_stream_is_retried_once_transparently():
    srv.reset("refuse_once")
    with driver() as d:
        assert d.ping() == ("OK", {})
    assert len(srv.requests) == 2, srv.requests
    srv.reset("refuse_always")
    with driver() as d:
        r = d.ping()
        assert r[0] == "UNAVAILABLE" and "REFUSED_STREAM" in r[2], r
    assert len(srv.requests) == 2, "retried %d times" % (len(srv.requests) - 1)


def test_goaway_moves_unprocessed_calls_to_a_new_connection():
    srv.reset("goaway_once")
    with driver() as d:
        assert d.ping() == ("OK", {})
        assert srv.connections == 2, srv.connections


def test_garbage_instead_of_http2_is_a_protocol_error():
    srv.reset("garbage")
    with driver() as d:
        r = d.ping()
        assert r[0] == "E_PROTOCOL" and "HTTP/2 protocol error" in r[2], r


def test_server_without_alpn_h2_is_refused():
    srv.reset("no_alpn")
    with driver() as d:
        r = d.ping()
        assert r[0] == "E_TLS" and "ALPN h2" in r[2], r


def test_server_closing_before_answering_is_unavailable():
    srv.reset("close")
    with driver() as d:
        r = d.ping()
        assert r[0] == "UNAVAILABLE" and "lost" in r[2], r


def test_request_headers_credentials_and_metadata_on_the_wire():
    srv.reset("echo")
    with driver(["--token", "chan-token", "--api-key", "chan-key"]) as d:
        assert d.ping("--deadline 1500 --md x-tenant=acme")[0] == "OK"
        assert d.ping("--api-key call-key")[0] == "OK"
        assert d.ping("--token call-token")[0] == "OK"
    first, second, third = srv.requests
    h = {n: v for n, v, _ in first}
    assert h[":method"] == "POST" and h[":scheme"] == "https", h
    assert h[":path"] == "/bastion.v1.Mcp/Ping", h
    assert h[":authority"] == "127.0.0.1:%d" % srv.port, h
    assert h["content-type"] == "application/grpc" and h["te"] == "trailers", h
    assert h["user-agent"].startswith("bastion-c/"), h
    assert h["authorization"] == "Bearer chan-token" and h["x-api-key"] == "chan-key", h
    assert h["x-tenant"] == "acme", h
    m = re.fullmatch(r"(\d{1,8})([HMSmun])", h["grpc-timeout"])
    assert m, h["grpc-timeout"]
    unit = {"H": 3600e9, "M": 60e9, "S": 1e9, "m": 1e6, "u": 1e3, "n": 1}[m.group(2)]
    assert 1.0e9 < int(m.group(1)) * unit <= 1.5e9, h["grpc-timeout"]
    # Credentials are never entered into the HPACK dynamic table.
    secret = {n for n, v, never in first if never}
    assert {"authorization", "x-api-key"} <= secret, first
    # Per-call credentials replace the channel's (both kinds).
    h2_ = {n: v for n, v, _ in second}
    assert h2_.get("x-api-key") == "call-key" and "authorization" not in h2_, h2_
    h3 = {n: v for n, v, _ in third}
    assert h3.get("authorization") == "Bearer call-token" and "x-api-key" not in h3, h3
    assert "grpc-timeout" not in h3, h3  # no deadline, none sent


def main():
    global srv
    srv = HostileServer()
    try:
        harness.run_tests([
            test_well_formed_answer_is_ok,
            test_missing_grpc_status_is_a_protocol_error,
            test_malformed_grpc_status_is_a_protocol_error,
            test_oversized_length_prefix_is_resource_exhausted,
            test_compressed_message_is_refused,
            test_two_messages_in_a_unary_answer_are_refused,
            test_truncated_message_is_refused,
            test_ok_without_a_message_is_refused,
            test_undecodable_protobuf_is_refused,
            test_grpc_message_is_percent_decoded_and_sanitised,
            test_http_error_without_grpc_status_maps_to_a_grpc_code,
            test_non_grpc_200_is_refused,
            test_oversized_response_headers_are_refused,
            test_stream_reset_by_the_server_maps_its_code,
            test_refused_stream_is_retried_once_transparently,
            test_goaway_moves_unprocessed_calls_to_a_new_connection,
            test_garbage_instead_of_http2_is_a_protocol_error,
            test_server_without_alpn_h2_is_refused,
            test_server_closing_before_answering_is_unavailable,
            test_request_headers_credentials_and_metadata_on_the_wire,
        ])
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
