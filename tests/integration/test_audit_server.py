"""The audit log through the real bastiond (docs/audit.md): stock gRPC clients (python3-grpcio)
call the server over mutual TLS, and the segment files it writes are read back two ways, by
python3-protobuf with nothing but the .proto files (descriptor set built by protoc here; frames
and hash chain parsed from the byte layout in docs/audit.md) and by `bastion-audit`.

Checked: exactly one request record per call under concurrent load, matched by the x-request-id
response header, for successes, failed authentication, denials, unknown methods and invalid
arguments, in each audit mode; calls ended by a deadline or a reset while a stage (scrypt) still
holds them, and such calls at shutdown, recorded once; refused TLS handshakes as connection
records; kill -9 under load in blocking mode loses no acknowledged record and a restart records
the torn tail; a second writer on the same directory is refused; a full disk (a small tmpfs)
fails blocking calls closed with UNAVAILABLE and recovers by itself when space returns, while
batch mode keeps the records and writes them then; a file size limit (RLIMIT_FSIZE) fails closed
without killing bastiond; no password, API key, token or secret value reaches the audit files or
the server log; SIGHUP is an admin event; `bastion-audit` escapes control characters that
callers sent. The tmpfs tests need root (mount); elsewhere they say SKIP and pass.

Run with Debian's /usr/bin/python3."""

import atexit
import collections
import hashlib
import json
import os
import re
import resource
import secrets as pysecrets
import shutil
import signal
import socket
import ssl
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
from google.protobuf import (descriptor_pb2, descriptor_pool, json_format,  # noqa: E402
                             message_factory)

import harness  # noqa: E402
from harness import BUILD, SRC, run_tests  # noqa: E402

TOOL = os.path.join(BUILD, "bin", "bastion-audit")
MAGIC = b"BSTAUDIT"
HEADER, RECORD, CHECKPOINT = 1, 2, 3
ENVELOPE = 1 + 4 + 32  # kind, length, chain hash
HEX32 = re.compile(r"^[0-9a-f]{32}$")
UNAVAILABLE_MESSAGE = "the audit log is unavailable; the call was not completed"

# Numeric gRPC codes, as records carry them.
CODES = {c.name: c.value[0] for c in grpc.StatusCode}
CODES["OK"] = 0

msgs = None
_audit_classes = None
_secrets = None


# ---- The audit files, read by the .proto files and docs/audit.md alone --------------------------

def audit_classes():
    """AuditRecord, AuditSegmentHeader and AuditCheckpoint built by protoc from proto/ now."""
    global _audit_classes
    if _audit_classes is None:
        out = os.path.join(tempfile.mkdtemp(prefix="bastion-audit-ds-"), "ds.pb")
        subprocess.run(["protoc", "--include_imports", "--descriptor_set_out=" + out,
                        "-I", os.path.join(SRC, "proto"), "bastion/v1/audit.proto",
                        "bastion/v1/audit_log.proto"], check=True)
        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(harness.read(out))
        pool = descriptor_pool.DescriptorPool()
        for f in fds.file:
            pool.Add(f)

        def cls(name):
            d = pool.FindMessageTypeByName("bastion.v1." + name)
            if hasattr(message_factory, "GetMessageClass"):
                return message_factory.GetMessageClass(d)
            return message_factory.MessageFactory(pool).GetPrototype(d)
        _audit_classes = {n: cls(n) for n in ("AuditRecord", "AuditSegmentHeader",
                                                "AuditCheckpoint")}
    return _audit_classes


def segment_names(audit_dir):
    return sorted(n for n in os.listdir(audit_dir) if n.startswith("audit-") and n.endswith(".seg"))


class Log:
    """Every record of an audit directory, decoded by python3-protobuf, with the frames, the
    hash chain, the segment links and the sequences checked against docs/audit.md. A torn end of
    the last segment is allowed only with torn_ok, and is then described by .torn."""

    def __init__(self, audit_dir, torn_ok=False):
        c = audit_classes()
        self.records, self.torn, self.checkpoints = [], None, 0
        names = segment_names(audit_dir)
        assert names, "no segment in %s" % audit_dir
        prev = None
        for i, name in enumerate(names):
            data = harness.read(os.path.join(audit_dir, name))
            assert data[:8] == MAGIC, "%s: bad magic" % name
            off = 8
            while off < len(data):
                left = len(data) - off
                length = struct.unpack_from(">I", data, off + 1)[0] if left >= 5 else None
                if length is None or left < ENVELOPE + length:
                    assert torn_ok and i == len(names) - 1, "%s: torn frame at offset %d" % (
                        name, off)
                    self.torn = (name, off, left)
                    break
                kind = data[off]
                payload = data[off + 5:off + 5 + length]
                digest = data[off + 5 + length:off + ENVELOPE + length]
                if off == 8:
                    assert kind == HEADER, "%s: the first frame is not a header" % name
                    header = c["AuditSegmentHeader"].FromString(payload)
                    assert header.format_version == 1
                    assert name == "audit-%020d.seg" % header.first_sequence, name
                    if prev is None:
                        assert header.first_sequence == 1 and header.previous_hash == bytes(32)
                        prev = header.previous_hash
                    assert header.previous_hash == prev, "%s does not link to %s" % (
                        name, names[i - 1])
                h = hashlib.sha256(prev + data[off:off + 5] + payload).digest()
                assert h == digest, "%s: chain hash mismatch at offset %d" % (name, off)
                prev = h
                if kind == RECORD:
                    self.records.append(c["AuditRecord"].FromString(payload))
                elif kind == CHECKPOINT:
                    cp = c["AuditCheckpoint"].FromString(payload)
                    assert cp.sequence == self.records[-1].sequence, "checkpoint names %d" % (
                        cp.sequence)
                    self.checkpoints += 1
                else:
                    assert kind == HEADER and off == 8, "%s: frame kind %d at %d" % (name, kind,
                                                                                    off)
                off += ENVELOPE + length
        seqs = [r.sequence for r in self.records]
        assert seqs == list(range(1, len(seqs) + 1)), "sequences are not 1..%d" % len(seqs)

    def of_type(self, name):
        """Records of one event type, by its enum name without AUDIT_EVENT_ (e.g. REQUEST)."""
        enum = audit_classes()["AuditRecord"].DESCRIPTOR.fields_by_name["event_type"].enum_type
        number = enum.values_by_name["AUDIT_EVENT_" + name].number
        return [r for r in self.records if r.event_type == number]

    def by_request_id(self, type_name):
        out = collections.defaultdict(list)
        for r in self.of_type(type_name):
            out[r.request_id].append(r)
        return out

    def actions(self, type_name="ADMIN"):
        return [r.action for r in self.of_type(type_name)]


def tool(*args, timeout=60):
    return subprocess.run([TOOL] + list(args), capture_output=True, timeout=timeout)


def verify(audit_dir, *args):
    r = tool("verify", "--dir", audit_dir, *args)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def cat(audit_dir, *filters):
    r = tool("cat", "--dir", audit_dir, *filters)
    assert r.returncode == 0, r.stderr
    return r.stdout


# ---- Servers and calls --------------------------------------------------------------------------

def secrets():
    """API keys, passwords and the token signing key from scripts/gen-dev-secrets.sh, once."""
    global _secrets
    if _secrets is None:
        d = os.path.join(tempfile.mkdtemp(prefix="bastion-secrets-"), "dev")
        subprocess.run([os.path.join(SRC, "scripts", "gen-dev-secrets.sh"), d], check=True,
                       stdout=subprocess.DEVNULL)
        creds = {}
        for line in open(os.path.join(d, "dev-credentials.txt")):
            p = line.split()
            if len(p) == 3 and p[0] in ("api_key", "password"):
                creds[(p[0], p[1])] = p[2]
        _secrets = {"dir": d, "creds": creds}
        atexit.register(shutil.rmtree, os.path.dirname(d), True)
    return _secrets


def auth_lines():
    d = secrets()["dir"]
    return ["auth:",
            "  api_keys: %s" % os.path.join(d, "api-keys.yaml"),
            "  users: %s" % os.path.join(d, "users.yaml"),
            # Every bad key is answered UNAUTHENTICATED, not locked out after 100: the load test
            # predicts each call's outcome.
            "  failed_credentials_per_address: 0",
            "  token:",
            "    signing_key: %s" % os.path.join(d, "token-signing.pem")]


def audit_server(mode="blocking", audit=(), directory=None, **kw):
    """A harness.Server with API keys, users and a token signing key, extra lines in its audit:
    section, and optionally another audit directory."""
    srv = harness.Server(audit_mode=mode, extra=auth_lines(), **kw)
    text = open(srv.config).read()
    anchor = "  mode: %s\n" % mode
    assert text.count(anchor) == 1
    lines = list(audit)
    if directory is not None:
        text = text.replace("  directory: %s\n" % srv.audit_dir, "  directory: %s\n" % directory)
        srv.audit_dir = directory
    text = text.replace(anchor, anchor + "".join("  %s\n" % line for line in lines))
    with open(srv.config, "w") as f:
        f.write(text)
    return srv


def restart(srv):
    """Starts srv again after it stopped or was killed, keeping its first log."""
    if srv.proc is not None and srv.proc.poll() is None:
        srv.stop()
    if not srv.log.closed:
        srv.log.close()
    os.replace(srv.log_path, srv.log_path + ".%d" % srv.proc.pid)
    os.unlink(srv.port_file)
    return srv.start()


def done(srv):
    """End of a test: stops srv if it still runs, and removes its directory unless the test is
    failing (then it is kept, and named, for a look)."""
    if srv is None:
        return
    if srv.alive() or (srv.proc is not None and not srv.log.closed):
        srv.stop()
    if sys.exc_info()[0] is None:
        shutil.rmtree(srv.dir, ignore_errors=True)
    else:
        sys.stderr.write("--- bastiond directory kept: %s\n" % srv.dir)


def stop_ok(srv):
    code = srv.stop()
    assert code == 0, "bastiond exited with %r:\n%s" % (code, srv.logs()[-3000:])


def all_logs(srv):
    out = b""
    for n in os.listdir(srv.dir):
        if n.startswith("bastiond.log"):
            out += harness.read(os.path.join(srv.dir, n))
    return out


class Result:
    def __init__(self, code, rid, response=None, details=""):
        self.code, self.rid, self.response, self.details = code, rid, response, details

    def __repr__(self):
        return "%s %s %r" % (self.code, self.rid, self.details)


def request_id(md):
    ids = [v for k, v in (md or ()) if k == "x-request-id"]
    return ids[0] if ids else ""


def call(ch, path, request, response_type, metadata=None, timeout=10):
    """One unary call; the outcome with the x-request-id the server sent (in the headers of a
    response, in the trailers of a trailers-only error)."""
    try:
        resp, c = harness.unary(ch, msgs, path, request, response_type, timeout=timeout,
                                metadata=metadata, with_call=True)
        return Result("OK", request_id(list(c.initial_metadata()) + list(c.trailing_metadata())),
                      resp)
    except grpc.RpcError as e:
        md = list(e.initial_metadata() or ()) + list(e.trailing_metadata() or ())
        return Result(e.code().name, request_id(md), None, e.details())


def ping(ch, metadata=None, timeout=10):
    return call(ch, "/bastion.v1.Mcp/Ping", msgs["bastion.v1.PingRequest"](),
                "bastion.v1.PingResponse", metadata=metadata, timeout=timeout)


def call_tool(ch, tool_name, args_type, member=None, metadata=None, **args):
    """CallTool with name tool_name and the arguments oneof member (default: tool_name) set."""
    req = msgs["bastion.v1.CallToolRequest"](name=tool_name)
    getattr(req, member or tool_name).CopyFrom(msgs[args_type](**args))
    return call(ch, "/bastion.v1.Mcp/CallTool", req, "bastion.v1.CallToolResponse",
                metadata=metadata)


def who_am_i(ch, metadata=None):
    return call(ch, "/bastion.v1.Auth/WhoAmI", msgs["bastion.v1.WhoAmIRequest"](),
                "bastion.v1.WhoAmIResponse", metadata=metadata)


def issue_token(ch, username, password):
    return call(ch, "/bastion.v1.Auth/IssueToken",
                msgs["bastion.v1.IssueTokenRequest"](username=username, password=password),
                "bastion.v1.IssueTokenResponse")


ADMIN = "spiffe://bastion.local/user/admin"
VIEWER = "spiffe://bastion.local/user/viewer"


def workload():
    """The kinds of call of the load test: what each sends, and what its response and its
    request record must say (code, result, principal name)."""
    key = secrets()["creds"][("api_key", "admin")]
    return [
        ("cert_ping", "admin", lambda ch: ping(ch), "OK", "success", ADMIN),
        ("cert_tool", "admin",
         lambda ch: call_tool(ch, "list_pods", "bastion.v1.ListPodsArgs", namespace="default"),
         "OK", "success", ADMIN),
        ("api_key", "admin", lambda ch: who_am_i(ch, metadata=[("x-api-key", key)]), "OK",
         "success", "admin"),
        ("bad_key", "admin", lambda ch: ping(ch, metadata=[("x-api-key", "bst_nope")]),
         "UNAUTHENTICATED", "unauthenticated", ADMIN),
        ("denied", "viewer",
         lambda ch: call_tool(ch, "delete_pod", "bastion.v1.DeletePodArgs",
                              namespace="production", name="web"),
         "PERMISSION_DENIED", "denied", VIEWER),
        ("unknown", "admin",
         lambda ch: call(ch, "/bastion.v1.Mcp/NoSuchMethod", msgs["bastion.v1.PingRequest"](),
                         "bastion.v1.PingResponse"), "UNIMPLEMENTED", "error", ""),
        ("invalid", "admin",
         lambda ch: call_tool(ch, "get_pod", "bastion.v1.ListPodsArgs", member="list_pods",
                              namespace="default"), "INVALID_ARGUMENT", "error", ADMIN),
    ]


def run_load(srv, threads, per_thread):
    """threads x per_thread calls at once, kinds interleaved; returns [(kind, Result)]."""
    kinds = workload()
    channels = {n: harness.grpc_channel(srv.port, n) for n in ("admin", "viewer")}
    out, lock = [], threading.Lock()

    def worker(t):
        mine = []
        for i in range(per_thread):
            kind = kinds[(t + i) % len(kinds)]
            mine.append((kind, kind[2](channels[kind[1]])))
        with lock:
            out.extend(mine)

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for ch in channels.values():
        ch.close()
    return out


def check_one_record_per_call(mode, threads, per_thread):
    tags = ["compliance_tags:", "  request: \"CC6.1, CC7.2\"", "  admin: CC8.1"]
    srv = audit_server(mode, audit=tags).start()
    try:
        results = run_load(srv, threads, per_thread)
        stop_ok(srv)
        for kind, r in results:
            assert r.code == kind[3], "%s: expected %s, got %r" % (kind[0], kind[3], r)
            assert HEX32.match(r.rid), "%s: no x-request-id: %r" % (kind[0], r)
        ids = [r.rid for _, r in results]
        assert len(set(ids)) == len(ids), "request ids repeat"

        log = Log(srv.audit_dir)
        requests = log.by_request_id("REQUEST")
        dup = {k: len(v) for k, v in requests.items() if len(v) != 1}
        assert not dup, "request ids with more than one request record: %r" % dup
        missing = set(ids) - set(requests)
        assert not missing, "%d calls have no request record, e.g. %s" % (len(missing),
                                                                         sorted(missing)[:3])
        extra = set(requests) - set(ids)
        assert not extra, "request records of calls nobody made: %r" % sorted(extra)[:3]
        assert len(log.of_type("REQUEST")) == threads * per_thread

        authn = log.by_request_id("AUTHENTICATION")
        authz = log.by_request_id("AUTHORIZATION")
        for kind, r in results:
            rec = requests[r.rid][0]
            where = "%s %s" % (kind[0], r.rid)
            assert rec.grpc_status == CODES[kind[3]], where
            assert rec.result == kind[4], "%s: result %r" % (where, rec.result)
            assert rec.principal.name == kind[5], "%s: principal %r" % (where, rec.principal.name)
            assert rec.peer_address.startswith("127.0.0.1:"), where
            assert rec.grpc_method.startswith("/bastion.v1."), where
            assert list(rec.compliance_tags) == ["CC6.1", "CC7.2"], where
            # The default events setting: authentication failures and authorization denials
            # are recorded beside the request record, once each; nothing else is.
            assert len(authn.get(r.rid, [])) == (1 if kind[0] == "bad_key" else 0), where
            assert len(authz.get(r.rid, [])) == (1 if kind[0] == "denied" else 0), where
            if kind[0] == "api_key":
                assert rec.principal.credential_id == "dev-admin-1", where
                assert rec.principal.certificate_identity == ADMIN, where
            if kind[0] == "denied":
                assert (rec.permission, rec.namespace, rec.object_name, rec.tool) == (
                    "k8s:pods:delete", "production", "web", "delete_pod"), where
                assert rec.decision == 2 and rec.decision_rule, where  # AUDIT_DECISION_DENY
                assert authz[r.rid][0].result == "denied", where
            if kind[0] == "cert_tool":
                assert rec.decision == 1 and rec.tool == "list_pods", where  # ALLOW
            if kind[0] == "bad_key":
                assert authn[r.rid][0].result == "unauthenticated", where
                assert authn[r.rid][0].grpc_status == CODES["UNAUTHENTICATED"], where
            # Any protobuf implementation reads it: the JSON mapping round-trips.
            json_format.MessageToJson(rec)
        assert log.actions()[0] == "startup" and log.actions()[-1] == "shutdown", log.actions()
        assert all(list(r.compliance_tags) == ["CC8.1"] for r in log.of_type("ADMIN"))

        code, out = verify(srv.audit_dir)
        assert code == 0 and out.startswith("OK "), out
        lines = cat(srv.audit_dir, "--type", "request").decode().splitlines()
        assert sorted(json.loads(line)["request_id"] for line in lines) == sorted(ids)
        st = os.stat(srv.audit_dir)
        assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        for n in segment_names(srv.audit_dir):
            st = os.stat(os.path.join(srv.audit_dir, n))
            assert stat.S_IMODE(st.st_mode) == 0o600, (n, oct(st.st_mode))
        return len(results)
    finally:
        done(srv)


# ---- Tests --------------------------------------------------------------------------------------

def test_blocking_mode_writes_exactly_one_request_record_per_call_under_concurrent_load():
    n = check_one_record_per_call("blocking", threads=8, per_thread=42)
    print("  blocking: %d calls, one request record each" % n)


def test_batch_and_best_effort_modes_write_exactly_one_request_record_per_call():
    for mode in ("batch", "best-effort"):
        n = check_one_record_per_call(mode, threads=6, per_thread=21)
        print("  %s: %d calls, one request record each" % (mode, n))


def test_refused_tls_handshakes_are_connection_records():
    srv = audit_server().start()
    try:
        ca = os.path.join(harness.certs(), "ca.crt")
        local_ports = {}

        def attempt(label, cert_name=None, plain=None):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            local_ports[label] = sock.getsockname()[1]
            try:
                if plain is not None:
                    sock.sendall(plain)
                    sock.recv(100)
                    return
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.load_verify_locations(ca)
                ctx.set_alpn_protocols(["h2"])
                if cert_name:
                    ctx.load_cert_chain(*harness.cert(cert_name))
                s = ctx.wrap_socket(sock, server_hostname="localhost")
                # TLS 1.3: the server judges the client certificate after the client's
                # Finished; its alert arrives on the first read.
                s.recv(100)
                raise AssertionError("%s: the server accepted the connection" % label)
            except (ssl.SSLError, ConnectionError, OSError):
                pass
            finally:
                sock.close()

        attempt("no client certificate")
        attempt("certificate of another CA", "stranger")
        attempt("not TLS", plain=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        # A connection that succeeds is no connection record.
        ch = harness.grpc_channel(srv.port, "admin")
        assert ping(ch).code == "OK"
        ch.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and harness.read(srv.log_path).count(
                b"tls_refused") < 3:
            time.sleep(0.05)
        stop_ok(srv)
        log = Log(srv.audit_dir)
        conns = log.of_type("CONNECTION")
        by_port = {int(r.peer_address.rsplit(":", 1)[1]): r for r in conns}
        for label, port in local_ports.items():
            assert port in by_port, "%s (port %d): no connection record in %r" % (
                label, port, [r.peer_address for r in conns])
            r = by_port[port]
            assert r.result == "refused" and r.action, (label, r)
            assert r.peer_address == "127.0.0.1:%d" % port
            assert not r.request_id and not r.grpc_method, (label, r)
        assert len(conns) == 3, [json_format.MessageToDict(r) for r in conns]
        assert "certificate" in by_port[local_ports["no client certificate"]].detail + \
            by_port[local_ports["no client certificate"]].action, by_port
        lines = cat(srv.audit_dir, "--type", "connection").decode().splitlines()
        assert len(lines) == 3, lines
    finally:
        done(srv)


def test_kill_9_under_load_in_blocking_mode_loses_no_acknowledged_record():
    srv = audit_server("blocking").start()
    try:
        acked, lock, stop = [], threading.Lock(), threading.Event()
        kinds = workload()

        def worker(t):
            ch = harness.grpc_channel(srv.port, "admin")
            i = 0
            while not stop.is_set():
                kind = kinds[(t + i) % 4]  # cert_ping, cert_tool, api_key, bad_key
                r = kind[2](ch)
                i += 1
                if r.code == "OK":
                    with lock:
                        acked.append(r.rid)
                elif r.code != kind[3]:
                    break  # the server is gone
            ch.close()

        ts = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for t in ts:
            t.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(acked) < 150:
            time.sleep(0.01)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        stop.set()
        for t in ts:
            t.join()
        assert len(acked) >= 150, "only %d calls succeeded before the kill" % len(acked)

        log = Log(srv.audit_dir, torn_ok=True)
        requests = log.by_request_id("REQUEST")
        lost = [rid for rid in acked if rid not in requests]
        assert not lost, "%d of %d acknowledged calls have no record: %s" % (
            len(lost), len(acked), lost[:3])
        assert all(len(v) == 1 for v in requests.values())
        code, out = verify(srv.audit_dir, "--allow-torn-tail")
        assert code == 0, out
        # A kill rarely lands inside a write(): when it did not, tear the last frame as a crash
        # in the middle of a write would, so the restart below always has a tail to cut.
        natural = log.torn is not None
        last = os.path.join(srv.audit_dir, segment_names(srv.audit_dir)[-1])
        if not natural:
            with open(last, "ab") as f:
                f.write(struct.pack(">BI", RECORD, 120) + b"\x08" * 40)
        code, out = verify(srv.audit_dir)
        assert code == 1 and "truncated" in out, (code, out)
        code, out = verify(srv.audit_dir, "--allow-torn-tail")
        assert code == 0, out
        print("  %d acknowledged calls, all recorded; torn tail %s" % (
            len(acked), "left by the kill" if natural else "simulated (the kill left none)"))

        restart(srv)
        ch = harness.grpc_channel(srv.port, "admin")
        after = ping(ch)
        ch.close()
        assert after.code == "OK", after
        stop_ok(srv)
        code, out = verify(srv.audit_dir)
        assert code == 0, out
        log2 = Log(srv.audit_dir)
        torn = [r for r in log2.records if r.action == "torn_tail"]
        assert len(torn) == 1, [json_format.MessageToDict(r) for r in torn]
        assert torn[0].event_type == 5, torn[0]  # an incomplete frame is an admin event
        assert os.path.basename(last) in torn[0].detail, torn[0].detail
        kept = [n for n in os.listdir(srv.audit_dir) if ".torn-" in n]
        assert len(kept) == 1 and kept[0].startswith(os.path.basename(last)), kept
        assert stat.S_IMODE(os.stat(os.path.join(srv.audit_dir, kept[0])).st_mode) == 0o600
        requests2 = log2.by_request_id("REQUEST")
        assert all(rid in requests2 for rid in acked)
        assert len(requests2[after.rid]) == 1
        assert len(segment_names(srv.audit_dir)) == 2
    finally:
        done(srv)


def tagged_channel(port, name, user_agent):
    """harness.grpc_channel with a user agent of our own: it is recorded (user_agent), so calls
    whose x-request-id the client never saw (deadline, cancel) can still be counted."""
    c, k = harness.cert(name)
    creds = grpc.ssl_channel_credentials(harness.read(os.path.join(harness.certs(), "ca.crt")),
                                         harness.read(k), harness.read(c))
    return grpc.secure_channel("127.0.0.1:%d" % port, creds,
                               options=[("grpc.ssl_target_name_override", "localhost"),
                                        ("grpc.default_authority", "localhost"),
                                        ("grpc.primary_user_agent", user_agent)])


def test_calls_ended_by_deadline_or_cancel_during_a_slow_stage_are_recorded_once():
    # IssueToken runs scrypt on a pool thread (~0.1 s or more): the deadline fires, or the
    # client resets the stream, while a stage still owns the call. The peer is answered at once;
    # the record must still be written exactly once, when the stage gives the call back.
    srv = audit_server().start()
    try:
        agent = "deadline-probe-" + pysecrets.token_hex(4)
        ch = tagged_channel(srv.port, "admin", agent)
        # Connect first: a call whose deadline passes during the TLS handshake never reaches
        # the server, and only calls that reached it have records.
        ping(ch)
        login = ch.unary_unary("/bastion.v1.Auth/IssueToken",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=msgs["bastion.v1.IssueTokenResponse"]
                               .FromString)
        futures, codes = [], collections.Counter()
        for i in range(12):
            req = msgs["bastion.v1.IssueTokenRequest"](username="nobody-%d" % i,
                                                       password="wrong")
            futures.append(login.future(req, timeout=0.03 if i % 2 == 0 else 10))
        time.sleep(0.01)
        for f in futures[1::2]:
            f.cancel()
        for f in futures:
            try:
                f.result()
                codes["OK"] += 1
            except grpc.FutureCancelledError:
                codes["CANCELLED"] += 1
            except grpc.RpcError as e:
                codes[e.code().name] += 1
        assert codes["OK"] == 0, codes
        ch.close()
        # The logins finish on the pool's time (two threads, ~0.1 s of scrypt each): wait for
        # their call log lines. Stopping earlier is the next test.
        # On a loaded machine the client may give up on a call before sending it, so the
        # server's own count of calls that reached it (its access log) is what must match.
        seen, last_change = -1, time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            n = harness.read(srv.log_path).count(b'"method":"/bastion.v1.Auth/IssueToken"')
            if n != seen:
                seen, last_change = n, time.monotonic()
            if seen == 12 or time.monotonic() - last_change > 3:
                break
            time.sleep(0.05)
        stop_ok(srv)
        log = Log(srv.audit_dir)
        mine = [r for r in log.of_type("REQUEST") if r.user_agent.startswith(agent) and
                r.grpc_method == "/bastion.v1.Auth/IssueToken"]
        ids = collections.Counter(r.request_id for r in mine)
        assert seen >= 1, "no login reached the server"
        assert len(mine) == seen and len(ids) == seen, (seen, len(mine), ids)
        statuses = collections.Counter(r.grpc_status for r in mine)
        assert set(statuses) <= {CODES["DEADLINE_EXCEEDED"], CODES["CANCELLED"],
                                 CODES["UNAUTHENTICATED"]}, statuses
        print("  client saw %s; records say %s" % (dict(codes), dict(statuses)))
    finally:
        done(srv)


def test_stopping_while_logins_are_in_flight_exits_cleanly_and_records_every_call():
    # The same calls, but SIGTERM as soon as the client has given up on them: their streams are
    # gone, so the drain has nothing to wait for while the scrypt pool still holds the logins.
    # Each must still get its one record, and bastiond must exit cleanly.
    srv = audit_server().start()
    try:
        agent = "shutdown-probe-" + pysecrets.token_hex(4)
        ch = tagged_channel(srv.port, "admin", agent)
        login = ch.unary_unary("/bastion.v1.Auth/IssueToken",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=msgs["bastion.v1.IssueTokenResponse"]
                               .FromString)
        futures = [login.future(msgs["bastion.v1.IssueTokenRequest"](
            username="nobody-%d" % i, password="wrong"), timeout=0.02) for i in range(16)]
        for f in futures:
            try:
                f.result()
            except grpc.RpcError:
                pass
        ch.close()
        srv.proc.send_signal(signal.SIGTERM)
        code = srv.proc.wait(30)
        srv.log.close()
        report = [line for line in srv.logs().splitlines()
                  if "AddressSanitizer" in line or re.match(r"\s+#\d+ ", line)]
        assert code == 0, "bastiond exited with %r:\n%s" % (code, "\n".join(report[:14]))
        log = Log(srv.audit_dir)
        mine = [r for r in log.of_type("REQUEST") if r.user_agent.startswith(agent)]
        assert len(mine) == 16 and len({r.request_id for r in mine}) == 16, (
            "16 calls, %d request records" % len(mine))
    finally:
        done(srv)


def test_a_second_bastiond_on_the_same_audit_directory_is_refused():
    first = audit_server().start()
    try:
        second = audit_server(directory=first.audit_dir)
        try:
            second.start()
            raise AssertionError("two writers share %s" % first.audit_dir)
        except RuntimeError as e:
            assert "audit" in str(e), e
        finally:
            done(second)
        assert first.alive()
        ch = harness.grpc_channel(first.port, "admin")
        assert ping(ch).code == "OK"
        ch.close()
        stop_ok(first)
        code, out = verify(first.audit_dir)
        assert code == 0, out
    finally:
        done(first)


def fill(path):
    """Writes path until the file system is full; returns the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                n += f.write(b"\0" * 4096)
        except OSError:
            pass
    return n


def test_disk_full_fails_closed_with_unavailable_and_recovers_when_space_returns():
    root = tempfile.mkdtemp(prefix="bastion-tmpfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", root],
                       capture_output=True)
    if r.returncode != 0:
        print("  SKIP: cannot mount a tmpfs here (%s); the RLIMIT_FSIZE test shows fail-closed"
              % r.stderr.decode().strip())
        return
    srv = None
    try:
        srv = audit_server("blocking", directory=os.path.join(root, "audit")).start()
        ch = harness.grpc_channel(srv.port, "admin")
        before = [ping(ch) for _ in range(3)]
        assert all(r.code == "OK" for r in before), before
        filled = fill(os.path.join(root, "filler"))
        # Whatever room was left in the segment's last page goes first; then every call must
        # fail closed, and none may be answered OK without its record.
        ok, refused = [], []
        for _ in range(400):
            r = ping(ch)
            (ok if r.code == "OK" else refused).append(r)
            if len(refused) >= 5:
                break
        assert len(refused) >= 5, "the disk is full (%d bytes filled) but %d calls succeeded" % (
            filled, len(ok))
        for r in refused:
            assert r.code == "UNAVAILABLE" and r.details == UNAVAILABLE_MESSAGE, r
        assert srv.alive()
        os.unlink(os.path.join(root, "filler"))
        recovered, deadline = None, time.monotonic() + 15
        while time.monotonic() < deadline:
            r = ping(ch)
            if r.code == "OK":
                recovered = r
                break
            refused.append(r)
            time.sleep(0.1)
        assert recovered is not None, "no recovery after space returned: %r" % refused[-1:]
        tail = [ping(ch) for _ in range(5)]
        assert all(r.code == "OK" for r in tail), tail
        ch.close()
        stop_ok(srv)

        code, out = verify(srv.audit_dir)
        assert code == 0, out
        log = Log(srv.audit_dir)
        requests = log.by_request_id("REQUEST")
        for r in before + ok + [recovered] + tail:
            assert len(requests.get(r.rid, [])) == 1, "acknowledged call %s unrecorded" % r.rid
        for r in refused:
            # Refused calls were cut back with their group: no record claims they completed.
            assert r.rid not in requests or requests[r.rid][0].grpc_status != 0, r
        violations = [x for x in log.of_type("SECURITY_VIOLATION") if x.action == "write_failed"]
        assert len(violations) == 1, [json_format.MessageToDict(x) for x in violations]
        seq = violations[0].sequence
        assert requests[recovered.rid][0].sequence > seq, "the violation must precede recovery"
        print("  %d calls refused while full, recovered in %d; violation: %s" % (
            len(refused), len(refused) - 5 + 1, violations[0].detail))
    finally:
        done(srv)
        subprocess.run(["umount", root], check=False)
        os.rmdir(root)


def test_disk_full_in_batch_mode_keeps_records_and_writes_them_when_space_returns():
    root = tempfile.mkdtemp(prefix="bastion-tmpfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", root],
                       capture_output=True)
    if r.returncode != 0:
        print("  SKIP: cannot mount a tmpfs here (%s)" % r.stderr.decode().strip())
        return
    srv = None
    try:
        srv = audit_server("batch", directory=os.path.join(root, "audit")).start()
        ch = harness.grpc_channel(srv.port, "admin")
        assert ping(ch).code == "OK"
        fill(os.path.join(root, "filler"))
        # Batch mode answers when the record is queued: calls go on while the disk is full, and
        # their records wait in the queue (retried with backoff) instead of being lost.
        during = [ping(ch) for _ in range(300)]
        assert all(r.code == "OK" for r in during), [r for r in during if r.code != "OK"][:3]
        time.sleep(0.3)
        os.unlink(os.path.join(root, "filler"))
        after = [ping(ch) for _ in range(3)]
        assert all(r.code == "OK" for r in after), after
        ch.close()
        stop_ok(srv)
        code, out = verify(srv.audit_dir)
        assert code == 0, out
        log = Log(srv.audit_dir)
        requests = log.by_request_id("REQUEST")
        lost = [r.rid for r in during + after if len(requests.get(r.rid, [])) != 1]
        assert not lost, "%d of %d calls unrecorded after space returned" % (
            len(lost), len(during) + len(after))
        violations = [x for x in log.of_type("SECURITY_VIOLATION") if x.action == "write_failed"]
        assert len(violations) == 1, [json_format.MessageToDict(x) for x in violations]
        print("  %d calls while full, all recorded once space returned; violation: %s" % (
            len(during), violations[0].detail))
    finally:
        done(srv)
        subprocess.run(["umount", root], check=False)
        os.rmdir(root)


def test_file_size_limit_fails_closed_and_a_restart_without_it_recovers():
    # RLIMIT_FSIZE is inherited through fork: lower our soft limit only while bastiond starts.
    # bastiond must ignore SIGXFSZ, so the limit is an EFBIG write error, not its death.
    srv = audit_server("blocking")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, hard))
    try:
        srv.start()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    try:
        ch = harness.grpc_channel(srv.port, "admin")
        ok, refused = [], []
        for _ in range(2000):
            r = ping(ch)
            (ok if r.code == "OK" else refused).append(r)
            if len(refused) >= 5:
                break
        assert ok and len(refused) >= 5, (len(ok), refused[:1])
        assert all(r.code == "UNAVAILABLE" and r.details == UNAVAILABLE_MESSAGE
                   for r in refused), refused
        assert srv.alive(), "bastiond died of SIGXFSZ"
        ch.close()
        stop_ok(srv)
        log = Log(srv.audit_dir)
        requests = log.by_request_id("REQUEST")
        assert all(len(requests.get(r.rid, [])) == 1 for r in ok)
        restart(srv)  # the limit is gone: a new segment, and calls succeed again
        ch = harness.grpc_channel(srv.port, "admin")
        again = [ping(ch) for _ in range(3)]
        ch.close()
        assert all(r.code == "OK" for r in again), again
        stop_ok(srv)
        code, out = verify(srv.audit_dir)
        assert code == 0, out
        requests = Log(srv.audit_dir).by_request_id("REQUEST")
        assert all(len(requests.get(r.rid, [])) == 1 for r in ok + again)
        print("  %d calls recorded under a 48 KiB limit, then UNAVAILABLE; restart recovered"
              % len(ok))
    finally:
        done(srv)


def test_no_password_api_key_or_token_reaches_the_audit_files_or_the_log():
    creds = secrets()["creds"]
    password = creds[("password", "admin")]
    key = creds[("api_key", "admin")]
    wrong_password = "canary-pw-" + pysecrets.token_hex(12)
    unknown_key = "bst_" + pysecrets.token_urlsafe(32)
    secret_value = "canary-secret-value-" + pysecrets.token_hex(12)
    bogus_jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ." + pysecrets.token_urlsafe(32)
    srv = audit_server(audit=["events:", "  authentication: all", "  authorization: all"])
    srv.start()
    try:
        ch = harness.grpc_channel(srv.port, "admin")
        login = issue_token(ch, "admin", password)
        assert login.code == "OK", login
        token = login.response.token
        assert token.count(".") == 2, token
        failed = issue_token(ch, "admin", wrong_password)
        assert failed.code == "UNAUTHENTICATED", failed
        with_token = who_am_i(ch, metadata=[("authorization", "Bearer " + token)])
        assert with_token.code == "OK", with_token
        with_key = who_am_i(ch, metadata=[("authorization", "ApiKey " + key)])
        assert with_key.code == "OK", with_key
        bad_key = who_am_i(ch, metadata=[("x-api-key", unknown_key)])
        assert bad_key.code == "UNAUTHENTICATED", bad_key
        bad_jwt = who_am_i(ch, metadata=[("authorization", "Bearer " + bogus_jwt)])
        assert bad_jwt.code == "UNAUTHENTICATED", bad_jwt
        created = call_tool(ch, "create_secret", "bastion.v1.CreateSecretArgs",
                            namespace="development", name="canary",
                            data=[msgs["bastion.v1.SecretEntry"](key="password",
                                                                 value=secret_value)])
        assert created.code == "OK" and not created.response.is_error, created
        ch.close()
        stop_ok(srv)

        canaries = {"password": password, "wrong password": wrong_password, "API key": key,
                    "unknown API key": unknown_key, "token": token, "bogus JWT": bogus_jwt,
                    "secret value": secret_value}
        # The JWT's signature alone is a secret too: a log cutting the token must not keep it.
        canaries["token signature"] = token.rsplit(".", 1)[1]
        files = {os.path.join(srv.audit_dir, n): None for n in os.listdir(srv.audit_dir)}
        blobs = {p: harness.read(p) for p in files if os.path.isfile(p)}
        blobs["bastiond log"] = all_logs(srv)
        blobs["bastion-audit cat"] = cat(srv.audit_dir)
        for what, value in canaries.items():
            for where, data in blobs.items():
                assert value.encode() not in data, "the %s appears in %s" % (what, where)

        log = Log(srv.audit_dir)
        requests = log.by_request_id("REQUEST")
        jwt_id = "jwt:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        assert requests[with_token.rid][0].principal.credential_id == jwt_id, \
            requests[with_token.rid][0].principal
        assert requests[with_key.rid][0].principal.credential_id == "dev-admin-1"
        assert requests[failed.rid][0].result == "unauthenticated"
        rec = requests[created.rid][0]
        args = {a.name: a for a in rec.arguments}
        assert "data" in args and "password" in args["data"].value, rec.arguments
        for r in (failed, bad_key, bad_jwt):
            assert len(log.by_request_id("AUTHENTICATION").get(r.rid, [])) == 1, r
    finally:
        done(srv)


def test_sighup_is_a_reload_admin_event():
    srv = audit_server().start()
    try:
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b"reload_start" not in harness.read(srv.log_path):
            time.sleep(0.05)
        ch = harness.grpc_channel(srv.port, "admin")
        assert ping(ch).code == "OK"
        ch.close()
        stop_ok(srv)
        log = Log(srv.audit_dir)
        assert log.actions() == ["startup", "reload", "shutdown"], log.actions()
        reload_ = [r for r in log.of_type("ADMIN") if r.action == "reload"][0]
        assert "SIGHUP" in reload_.detail, reload_.detail
        lines = cat(srv.audit_dir, "--type", "admin").decode().splitlines()
        assert [json.loads(line)["action"] for line in lines] == log.actions()
    finally:
        done(srv)


def strings(v):
    """Every string inside a decoded JSON value, joined."""
    if isinstance(v, dict):
        return "".join(strings(k) + strings(x) for k, x in v.items())
    if isinstance(v, list):
        return "".join(strings(x) for x in v)
    return v if isinstance(v, str) else ""


def test_bastion_audit_escapes_control_characters_that_callers_sent():
    esc = "\x1b[31m"
    srv = audit_server().start()
    try:
        ch = harness.grpc_channel(srv.port, "admin")
        sent = [
            call_tool(ch, esc + "red", "bastion.v1.ListPodsArgs", member="list_pods",
                      namespace="default"),
            call_tool(ch, "list_pods", "bastion.v1.ListPodsArgs", namespace=esc + "red"),
            call_tool(ch, "get_pod", "bastion.v1.GetPodArgs", namespace="default",
                      name="web" + esc + "\u202e\x9b2J"),
        ]
        ch.close()
        for r in sent:
            assert r.code == "INVALID_ARGUMENT", r
            assert "\x1b" not in r.details, "grpc-message carries a raw ESC: %r" % r.details
        stop_ok(srv)

        log = Log(srv.audit_dir)
        requests = log.by_request_id("REQUEST")
        raw = [strings(json_format.MessageToDict(requests[r.rid][0])) for r in sent]
        assert any("\x1b" in s for s in raw), "no record kept the ESC: the test proves nothing"
        out = cat(srv.audit_dir)
        for name, text in (("cat", out), ("tail", tool("tail", "-n", "50", "--dir",
                                                         srv.audit_dir).stdout),
                           ("stats", tool("stats", "--dir", srv.audit_dir).stdout),
                           ("bastiond log", all_logs(srv))):
            body = text.decode("utf-8")
            bad = [c for c in body if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f
                   or c in "\u2028\u2029\u202a\u202b\u202c\u202d\u202e"]
            assert not bad, "%s prints raw control characters %r" % (name, sorted(set(bad)))
        by_id = {}
        for line in out.decode().splitlines():
            j = json.loads(line)  # one record per line, valid JSON
            by_id.setdefault(j.get("request_id"), []).append(j)
        for r in sent:
            rec = requests[r.rid][0]
            shown = [j for j in by_id[r.rid] if j.get("event_type") == "AUDIT_EVENT_REQUEST"][0]
            # Escaped, not removed: decoding the line gives back exactly what was recorded.
            assert shown.get("grpc_message", "") == rec.grpc_message, (shown, rec)
            assert shown.get("object_name", "") == rec.object_name
            assert shown.get("namespace", "") == rec.namespace
        assert b"\\u001b" in out
    finally:
        done(srv)


if __name__ == "__main__":
    msgs = harness.Messages()
    run_tests([
        test_blocking_mode_writes_exactly_one_request_record_per_call_under_concurrent_load,
        test_batch_and_best_effort_modes_write_exactly_one_request_record_per_call,
        test_refused_tls_handshakes_are_connection_records,
        test_kill_9_under_load_in_blocking_mode_loses_no_acknowledged_record,
        test_calls_ended_by_deadline_or_cancel_during_a_slow_stage_are_recorded_once,
        test_stopping_while_logins_are_in_flight_exits_cleanly_and_records_every_call,
        test_a_second_bastiond_on_the_same_audit_directory_is_refused,
        test_disk_full_fails_closed_with_unavailable_and_recovers_when_space_returns,
        test_disk_full_in_batch_mode_keeps_records_and_writes_them_when_space_returns,
        test_file_size_limit_fails_closed_and_a_restart_without_it_recovers,
        test_no_password_api_key_or_token_reaches_the_audit_files_or_the_log,
        test_sighup_is_a_reload_admin_event,
        test_bastion_audit_escapes_control_characters_that_callers_sent,
    ])
