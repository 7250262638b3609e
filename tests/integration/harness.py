"""Test harness for integration tests: generate certificates once per test run, start the real
bastiond on an ephemeral loopback port with a config written for the test, wait until it
listens, and stop it with TERM then KILL. Used by every tests/integration/test_*.py.

Run with Debian's /usr/bin/python3 (the pyenv python3 first on PATH cannot import Debian's
python3-grpcio, python3-h2 and friends)."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("BASTION_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BASTION_BUILD") or os.path.join(SRC, "build")
BASTIOND = os.path.join(BUILD, "bin", "bastiond")

# In the ASan+UBSan build (make test-sanitize) memory figures are not ours to judge: ASan keeps
# freed memory in a quarantine (256 MiB by default) and adds redzones and shadow memory, so RSS
# growth says nothing about the server's own bounds. Tests that measure memory report the figure
# and skip only that assertion there; everything else they check still runs.
SANITIZED = os.environ.get("BASTION_SANITIZED") == "1"
SANITIZED_WHY = ("ASan build: its quarantine and shadow memory dominate RSS, so memory bounds "
                 "are asserted only in the normal build")

_certs_dir = None


def certs():
    """Returns a directory of freshly generated dev certificates (once per process)."""
    global _certs_dir
    if _certs_dir is None:
        d = tempfile.mkdtemp(prefix="bastion-certs-")
        out = os.path.join(d, "pki")
        subprocess.run([os.path.join(SRC, "certs", "gen-dev-certs.sh"), out], check=True,
                       stdout=subprocess.DEVNULL)
        _certs_dir = out
    return _certs_dir


def cert(name):
    """(cert, key) paths of a generated identity, e.g. cert('admin')."""
    d = certs()
    return os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Server:
    """A running bastiond. Use as a context manager:

        with Server(limits={"max_message_bytes": "64KiB"}) as srv:
            ... srv.port ...
    """

    def __init__(self, client_auth="require", crl=True, limits=None, extra=None, workers=2,
                 policy=os.path.join(SRC, "configs", "rbac-policies.yaml"), audit_mode="blocking",
                 config_dir=None):
        """config_dir: where to write bastion.yaml (default: the server's own temporary
        directory), for configs whose relative paths must resolve against a given directory,
        e.g. a copy of configs/bastion.yaml's `auth:` section (`../certs/dev/...`)."""
        self.dir = tempfile.mkdtemp(prefix="bastiond-")
        d = certs()
        lines = [
            'listen: "127.0.0.1:0"',
            "workers: %d" % workers,
            "log_level: info",
            "drain_timeout: 5s",
            "tls:",
            "  cert: %s" % os.path.join(d, "server.crt"),
            "  key: %s" % os.path.join(d, "server.key"),
            "  client_ca: %s" % os.path.join(d, "ca.crt"),
            "  client_auth: %s" % client_auth,
        ]
        if crl:
            lines.append("  crl: %s" % os.path.join(d, "ca.crl"))
        if policy:
            lines += ["rbac:", "  policy: %s" % policy]
        self.audit_dir = os.path.join(self.dir, "audit")
        lines += ["audit:", "  directory: %s" % self.audit_dir, "  mode: %s" % audit_mode]
        if limits:
            lines.append("limits:")
            for k, v in limits.items():
                lines.append("  %s: %s" % (k, v))
        if extra:
            lines.extend(extra)
        self.config = os.path.join(config_dir or self.dir, "bastion.yaml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.port_file = os.path.join(self.dir, "port")
        self.log_path = os.path.join(self.dir, "bastiond.log")
        self.proc = None
        self.port = None

    def start(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [BASTIOND, "--config", self.config, "--port-file", self.port_file],
            stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("bastiond exited with %d:\n%s" % (self.proc.returncode,
                                                                     self.logs()))
            if os.path.exists(self.port_file):
                self.port = int(open(self.port_file).read().strip())
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("bastiond did not start:\n" + self.logs())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """TERM, then KILL after 10 s. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def logs(self):
        try:
            return open(self.log_path, "rb").read().decode("utf-8", "replace")
        except OSError:
            return ""

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        code = self.stop()
        if exc[0] is None and code not in (0,):
            raise AssertionError("bastiond exited with %r:\n%s" % (code, self.logs()[-4000:]))
        if exc[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            sys.stderr.write("--- bastiond log (%s) ---\n%s\n" % (self.dir, self.logs()[-6000:]))


def tls_client(port, name="admin", alpn=("h2",), **kw):
    """An ssl.SSLSocket connected to bastiond with the given client identity (None: no cert)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(certs(), "ca.crt"))
    if name is not None:
        c, k = cert(name)
        ctx.load_cert_chain(c, k)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    for k, v in kw.items():
        setattr(ctx, k, v)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname="localhost")


def descriptor_pool():
    """A protobuf descriptor pool built by protoc from proto/ at test time."""
    from google.protobuf import descriptor_pb2, descriptor_pool as dp
    out = os.path.join(tempfile.mkdtemp(prefix="bastion-ds-"), "ds.pb")
    subprocess.run(["protoc", "--include_imports", "--descriptor_set_out=" + out,
                    "-I", os.path.join(SRC, "proto"),
                    "bastion/v1/mcp.proto", "bastion/v1/auth.proto", "bastion/v1/audit.proto",
                    "grpc/health/v1/health.proto"], check=True)
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(read(out))
    pool = dp.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    return pool


class Messages:
    """Message classes by full name: msgs['bastion.v1.PingRequest']."""

    def __init__(self):
        from google.protobuf import message_factory
        self.pool = descriptor_pool()
        self.factory = message_factory

    def __getitem__(self, name):
        d = self.pool.FindMessageTypeByName(name)
        if hasattr(self.factory, "GetMessageClass"):
            return self.factory.GetMessageClass(d)
        return self.factory.MessageFactory(self.pool).GetPrototype(d)


def grpc_channel(port, name="admin"):
    import grpc
    c, k = cert(name) if name else (None, None)
    creds = grpc.ssl_channel_credentials(read(os.path.join(certs(), "ca.crt")),
                                         read(k) if k else None, read(c) if c else None)
    # Dial the loopback address and check the certificate for "localhost": the test needs no
    # name resolution (a minimal Debian root has no /etc/hosts entry for grpc's c-ares resolver).
    return grpc.secure_channel("127.0.0.1:%d" % port, creds,
                               options=[("grpc.ssl_target_name_override", "localhost"),
                                        ("grpc.default_authority", "localhost")])


def unary(channel, msgs, path, request, response_type, timeout=10, metadata=None,
          with_call=False):
    f = channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=msgs[response_type].FromString)
    if with_call:
        return f.with_call(request, timeout=timeout, metadata=metadata)
    return f(request, timeout=timeout, metadata=metadata)


def run_tests(tests):
    """Runs test functions in order, each reporting PASS/FAIL; exits 1 if any failed."""
    failed = 0
    for t in tests:
        start = time.monotonic()
        try:
            t()
            print("PASS %s (%.2fs)" % (t.__name__, time.monotonic() - start), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            failed += 1
            import traceback
            print("FAIL %s: %s" % (t.__name__, e), flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    sys.exit(1 if failed else 0)
