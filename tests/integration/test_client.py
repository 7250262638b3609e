"""libbastion and the `bastion` CLI against the real bastiond over mutual TLS.

The C side is build/bin/client_driver (tests/integration/client_driver.c): one channel driven by
commands on stdin, so that this script can freeze, kill and restart the server between calls on
the same channel. The CLI is build/bin/bastion. The last test installs the library with
`cmake --install`, builds examples/ping.c against it with pkg-config and runs it.

Run with Debian's /usr/bin/python3."""

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN = os.path.join(harness.BUILD, "bin")
CLI = os.path.join(BIN, "bastion")
DRIVER = os.path.join(BIN, "client_driver")

srv = None


# ---- helpers ------------------------------------------------------------------------------------


def pki(name):
    return os.path.join(harness.certs(), name)


def cli(*args, env=None, user="admin", server=None, timeout=60):
    """Runs the CLI with the dev CA and a client identity; returns (rc, stdout, stderr)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    base = []
    if user is not None:
        c, k = harness.cert(user)
        base = ["--ca", pki("ca.crt"), "--cert", c, "--key", k,
                "--server", server or "localhost:%d" % srv.port]
    if env:
        e.update(env)
        base = []
    p = subprocess.run([CLI] + base + list(args), env=e, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class Driver:
    """A client_driver process: one libbastion channel."""

    def __init__(self, port, user="admin", extra=(), server=None):
        c, k = harness.cert(user)
        args = [DRIVER, "--server", server or "127.0.0.1:%d" % port, "--ca", pki("ca.crt"),
                "--cert", c, "--key", k] + list(extra)
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        assert self.read(30) == "READY"

    def read(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise AssertionError("client_driver gave no answer within %ss" % timeout)
        line = self.proc.stdout.readline()
        if line == "":
            raise AssertionError("client_driver exited: %s" % self.proc.stderr.read())
        return line.rstrip("\n")

    def cmd(self, line, timeout=30):
        """Sends a command; returns ("OK", obj) or (STATUS_NAME, request_id, message)."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        ans = self.read(timeout)
        if ans.startswith("OK "):
            return ("OK", json.loads(ans[3:]))
        parts = ans.split(" ", 3)
        assert parts[0] == "ERR" and len(parts) >= 3, ans
        return (parts[1], parts[2], parts[3] if len(parts) > 3 else "")

    def call(self, service, method, request=None, opts=""):
        return self.cmd("call %s%s %s %s" % (opts + " " if opts else "", service, method,
                                             json.dumps(request or {})))

    def ping(self, opts=""):
        return self.call("bastion.v1.Mcp", "Ping", {}, opts)

    def close(self):
        """Quits and checks a clean exit (the ASan build reports leaks through the code)."""
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("client_driver did not exit")
        err = self.proc.stderr.read()
        assert self.proc.returncode == 0, "client_driver exited %d: %s" % (
            self.proc.returncode, err[-3000:])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:
            self.proc.kill()
            self.proc.wait()


def restart_on(port):
    """A new bastiond listening on the given port (the harness config, port fixed)."""
    s = harness.Server()
    with open(s.config) as f:
        text = f.read()
    with open(s.config, "w") as f:
        f.write(text.replace('"127.0.0.1:0"', '"127.0.0.1:%d"' % port))
    deadline = time.monotonic() + 10
    while True:
        try:
            return s.start()
        except RuntimeError:
            # The old socket may linger for a moment after a KILL.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def freeze(server):
    """SIGSTOP, and wait until every thread of the server has stopped (kill() only queues the
    signal: a worker running on another CPU could otherwise still answer)."""
    server.proc.send_signal(signal.SIGSTOP)
    deadline = time.monotonic() + 10
    task_dir = "/proc/%d/task" % server.proc.pid
    while time.monotonic() < deadline:
        states = []
        for t in os.listdir(task_dir):
            try:
                with open(os.path.join(task_dir, t, "stat")) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
        if states and all(st in ("T", "t") for st in states):
            return
        time.sleep(0.005)
    raise AssertionError("bastiond did not stop")


def log_lines(server):
    out = []
    for line in server.logs().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


# ---- the CLI ------------------------------------------------------------------------------------


def test_cli_ping_answers():
    rc, out, err = cli("ping")
    assert rc == 0, (rc, err)
    assert out.startswith("pong from localhost:%d in " % srv.port), out
    rc, out, err = cli("-o", "json", "ping")
    assert rc == 0 and json.loads(out)["server"] == "localhost:%d" % srv.port, (out, err)


def test_cli_reads_server_and_credentials_from_the_environment():
    c, k = harness.cert("viewer")
    rc, out, err = cli("whoami", env={"BASTION_SERVER": "127.0.0.1:%d" % srv.port,
                                      "BASTION_CA": pki("ca.crt"), "BASTION_CERT": c,
                                      "BASTION_KEY": k})
    assert rc == 0, err
    assert "spiffe://bastion.local/user/viewer" in out, out
    # Flags win over the environment.
    rc, out, err = cli("--cert", harness.cert("admin")[0], "--key", harness.cert("admin")[1],
                       "whoami", env={"BASTION_SERVER": "127.0.0.1:%d" % srv.port,
                                      "BASTION_CA": pki("ca.crt"), "BASTION_CERT": c,
                                      "BASTION_KEY": k})
    assert rc == 0 and "user/admin" in out, (out, err)


def test_cli_whoami_table_and_json():
    rc, out, err = cli("whoami", user="viewer")
    assert rc == 0, err
    assert "principal:" in out and "spiffe://bastion.local/user/viewer" in out, out
    assert "mechanism:    mtls" in out, out
    rc, out, err = cli("-o", "json", "whoami", user="viewer")
    j = json.loads(out)
    assert j["principal"]["name"] == "spiffe://bastion.local/user/viewer", j
    assert len(j["request_id"]) == 32, j


def test_cli_tools_table_and_json():
    rc, out, err = cli("tools")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "PERMISSION", "HINTS", "TITLE"], lines[0]
    assert any(l.startswith("list_pods ") and "k8s:pods:list" in l for l in lines), out
    rc, out, err = cli("tools", "-o", "json")
    tools = {t["name"]: t for t in json.loads(out)["tools"]}
    assert tools["list_pods"]["permission"] == "k8s:pods:list", tools["list_pods"]
    assert tools["list_pods"]["annotations"]["read_only_hint"] is True


def test_cli_call_with_key_value_and_with_json_arguments():
    rc, table, err = cli("call", "list_pods", "namespace=default")
    assert rc == 0, err
    assert table.splitlines()[0].split()[:3] == ["NAME", "READY", "STATUS"], table
    rc, out, err = cli("call", "list_pods", "--json", '{"namespace": "default"}', "-o", "json")
    assert rc == 0, err
    pods = json.loads(out)["list_pods"]["pods"]
    names = sorted(p["name"] for p in pods)
    assert names and all(n in table for n in names), (names, table)
    # --json - reads the arguments from stdin.
    c, k = harness.cert("admin")
    p = subprocess.run([CLI, "--ca", pki("ca.crt"), "--cert", c, "--key", k, "--server",
                        "localhost:%d" % srv.port, "call", "list_pods", "--json", "-"],
                       input='{"namespace":"default"}', capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and p.stdout == table, (p.stdout, p.stderr)


def test_cli_tool_error_exits_11_with_the_tools_text():
    rc, out, err = cli("call", "list_pods", "namespace=nope")
    assert rc == 11, (rc, out, err)
    assert err.startswith("TOOL_ERROR: ") and "nope" in err, err
    rc, out, err = cli("-o", "json", "call", "list_pods", "namespace=nope")
    assert rc == 11 and json.loads(out)["is_error"] is True, (rc, out)


def test_cli_invalid_argument_exits_5_with_status_name_and_request_id():
    rc, out, err = cli("call", "list_pods", "namespace=Not_A_Label")
    assert rc == 5, (rc, err)
    assert err.startswith("INVALID_ARGUMENT: ") and "(request id " in err, err
    assert out == ""


def pod_resource_uri(resources):
    """A pod's resource URI (admin may read pods everywhere in the example policy)."""
    uris = [r["uri"] for r in resources]
    pods = [u for u in uris if "/pod/" in u or u.endswith("/pods")]
    return (pods or uris)[0]


def first_resource_uri():
    rc, out, err = cli("-o", "json", "resources")
    assert rc == 0, err
    return pod_resource_uri(json.loads(out)["resources"])


def test_cli_resources_and_read():
    rc, out, err = cli("resources")
    assert rc == 0, err
    assert out.splitlines()[0].split() == ["URI", "NAME", "DESCRIPTION"], out
    uri = first_resource_uri()
    assert uri in out, (uri, out)
    rc, text, err = cli("read", uri)
    assert rc == 0 and text.strip(), (text, err)
    rc, out, err = cli("-o", "json", "read", uri)
    contents = json.loads(out)["contents"][0]
    assert contents["uri"] == uri, contents
    assert contents["text"].strip() == text.strip()


def test_cli_unknown_resource_exits_6():
    rc, out, err = cli("read", "k8s://default/pod/no-such-pod-anywhere")
    assert rc == 6 and err.startswith("NOT_FOUND: "), (rc, err)


def test_cli_permission_denied_exits_4():
    # The example policy lets viewer list pods in default and development only.
    rc, out, err = cli("call", "list_pods", "namespace=production", user="viewer")
    assert rc == 4 and err.startswith("PERMISSION_DENIED: "), (rc, err)


def test_cli_unauthenticated_exits_3():
    rc, out, err = cli("whoami", user="multi")
    assert rc == 3 and err.startswith("UNAUTHENTICATED: "), (rc, err)


def test_cli_usage_errors_exit_1():
    for args in (["--bogus", "ping"], ["frobnicate"], ["call", "no_such_tool"],
                 ["-o", "yaml", "ping"], ["call", "list_pods", "--json", "{not json"],
                 ["call", "list_pods", "namespace"], ["call", "list_pods", "nosuchfield=1"],
                 ["read"], ["ping", "extra"], ["--timeout", "soon", "ping"], []):
        rc, out, err = cli(*args)
        assert rc == 1, (args, rc, out, err)
        assert err.strip(), args
    rc, out, err = cli("--cert", pki("admin.crt"), "ping", user=None)
    assert rc == 1 and "--cert and --key go together" in err, err


def test_cli_help_documents_commands_and_exit_codes():
    rc, out, err = cli("--help", user=None)
    assert rc == 0
    for word in ("ping", "tools", "call TOOL", "resources", "read URI", "whoami", "--server",
                 "BASTION_TOKEN", "Exit codes", "PERMISSION_DENIED"):
        assert word in out, word


def test_cli_connection_refused_exits_2():
    s = harness.Server()
    port = s.start().port
    s.stop()
    rc, out, err = cli("ping", server="localhost:%d" % port)
    assert rc == 2 and err.startswith("E_CONNECT: ") and "refused" in err, (rc, err)


def test_cli_server_certificate_from_another_ca_is_refused():
    rc, out, err = cli("--ca", pki("other-ca.crt"), "ping")
    assert rc == 2, (rc, err)
    assert err.startswith("E_TLS: ") and "certificate verification failed" in err, err


def test_cli_wrong_host_name_is_refused():
    rc, out, err = cli("--server-name", "wrong.example", "ping",
                       server="127.0.0.1:%d" % srv.port)
    assert rc == 2 and "E_TLS: " in err and "hostname mismatch" in err, err
    # An IP target is checked against the certificate's IP SANs.
    rc, out, err = cli("--server-name", "127.0.0.2", "ping", server="127.0.0.1:%d" % srv.port)
    assert rc == 2 and "E_TLS: " in err and "IP address mismatch" in err, err
    rc, out, err = cli("ping", server="127.0.0.1:%d" % srv.port)
    assert rc == 0, err


def test_cli_client_certificate_from_another_ca_is_refused_by_the_server():
    rc, out, err = cli("ping", user="stranger")
    assert rc == 2 and err.startswith("E_TLS: "), (rc, err)


# ---- the library (client_driver) ----------------------------------------------------------------


def test_every_rpc_over_the_c_library():
    with Driver(srv.port) as d:
        assert d.ping() == ("OK", {})
        r = d.call("bastion.v1.Mcp", "Initialize", {"protocol_version": "2025-06-18"})
        assert r[0] == "OK" and r[1]["protocol_version"] == "2025-06-18", r
        r = d.call("bastion.v1.Mcp", "ListTools")
        assert r[0] == "OK" and any(t["name"] == "list_pods" for t in r[1]["tools"]), r
        r = d.call("bastion.v1.Mcp", "CallTool",
                   {"name": "list_pods", "list_pods": {"namespace": "default"}})
        assert r[0] == "OK" and r[1]["list_pods"]["pods"], r
        r = d.call("bastion.v1.Mcp", "ListResources")
        assert r[0] == "OK" and r[1]["resources"], r
        uri = pod_resource_uri(r[1]["resources"])
        r = d.call("bastion.v1.Mcp", "ReadResource", {"uri": uri})
        assert r[0] == "OK" and r[1]["contents"][0]["text"], r
        r = d.call("bastion.v1.Auth", "WhoAmI")
        assert r[0] == "OK" and r[1]["principal"]["name"].endswith("/admin"), r
        r = d.call("grpc.health.v1.Health", "Check", {"service": "bastion.v1.Mcp"})
        assert r == ("OK", {"status": "SERVING"}), r
        # Whatever the server answers to these, it is a gRPC status from the server itself
        # (with its request id), carried intact through the library.
        for method, req in (("IssueToken", {"username": "nobody", "password": "x"}),
                            ("CanI", {"permission": "k8s:pods:list", "namespace": "default"})):
            r = d.call("bastion.v1.Auth", method, req)
            assert r[0] == "OK" or len(r[1]) == 32, r
        # Errors carry the status, the server's request id and its message.
        r = d.call("bastion.v1.Mcp", "CallTool",
                   {"name": "get_pod", "list_pods": {"namespace": "default"}})
        assert r[0] == "INVALID_ARGUMENT" and len(r[1]) == 32 and "disagrees" in r[2], r


def test_hundred_concurrent_calls_share_one_connection():
    with Driver(srv.port) as d:
        assert d.ping()[0] == "OK"
        r = d.cmd("concurrent 100", timeout=60)
        assert r[0] == "OK" and r[1]["ok"] == 100, r
        ids = set(r[1]["ids"])
        assert len(ids) == 100, "request ids are not unique: %d" % len(ids)
    peers = {l.get("peer") for l in log_lines(srv) if l.get("request_id") in ids}
    assert len(peers) == 1, "the calls used %d connections: %s" % (len(peers), peers)


def test_deadline_shorter_than_the_call_is_deadline_exceeded():
    with harness.Server() as s, Driver(s.port) as d:
        assert d.ping()[0] == "OK"
        freeze(s)  # the server stops answering
        try:
            t0 = time.monotonic()
            r = d.ping("--deadline 300")
            dt = time.monotonic() - t0
        finally:
            s.proc.send_signal(signal.SIGCONT)
        assert r[0] == "DEADLINE_EXCEEDED" and "300 ms" in r[2], r
        assert 0.25 <= dt < 3, dt
        assert d.ping()[0] == "OK"  # the channel and its connection are still good


def test_server_enforces_the_grpc_timeout_the_client_sends():
    # The driver holds its I/O thread until a 1 ms deadline has passed and delays its own
    # timer by 10 s: the answer can only be the server's, enforcing the grpc-timeout it got.
    with Driver(srv.port) as d:
        assert d.ping()[0] == "OK"
        r = d.cmd("server_deadline")
        assert r[0] == "DEADLINE_EXCEEDED", r
        assert len(r[1]) == 32, "no x-request-id: the answer did not come from the server: %r" % (
            r,)
        assert r[2].startswith("deadline exceeded"), r
        ms = int(r[2].rsplit("after ", 1)[1].split()[0])
        assert ms < 5000, r
        assert d.ping("--deadline 5000")[0] == "OK"


def test_cancel_in_flight_call_is_cancelled_and_the_channel_stays_usable():
    with harness.Server() as s, Driver(s.port) as d:
        assert d.ping()[0] == "OK"
        freeze(s)
        try:
            assert d.cmd("start a 0")[0] == "OK"
            time.sleep(0.2)
            assert d.cmd("cancel a")[0] == "OK"
            t0 = time.monotonic()
            r = d.cmd("wait a", timeout=10)
            assert time.monotonic() - t0 < 2
        finally:
            s.proc.send_signal(signal.SIGCONT)
        assert r[0] == "CANCELLED", r
        assert d.ping()[0] == "OK"


def test_server_restart_the_channel_reconnects():
    s = harness.Server().start()
    port = s.port
    with Driver(port) as d:
        assert d.ping()[0] == "OK"
        assert s.stop() == 0  # SIGTERM: GOAWAY, drain, exit
        r = d.ping()
        assert r[0] == "E_CONNECT" and "refused" in r[2], r
        s2 = restart_on(port)
        try:
            r = d.ping()
            assert r[0] == "OK", r
            r = d.call("bastion.v1.Auth", "WhoAmI")
            assert r[0] == "OK", r
        finally:
            s2.stop()


def test_call_in_flight_when_the_connection_breaks_fails_unavailable():
    s = harness.Server().start()
    port = s.port
    with Driver(port) as d:
        assert d.ping()[0] == "OK"
        freeze(s)
        assert d.cmd("start a 0")[0] == "OK"
        time.sleep(0.2)
        s.proc.send_signal(signal.SIGKILL)  # the kernel closes its sockets
        s.proc.wait()
        r = d.cmd("wait a", timeout=10)
        assert r[0] == "UNAVAILABLE" and "lost" in r[2], r
        s2 = restart_on(port)
        try:
            assert d.ping()[0] == "OK"  # the next call reconnects
        finally:
            s2.stop()


def test_keepalive_ping_detects_a_frozen_server():
    with harness.Server() as s, Driver(s.port, extra=["--keepalive", "1000,500"]) as d:
        assert d.ping()[0] == "OK"
        freeze(s)
        try:
            assert d.cmd("start a 0")[0] == "OK"
            t0 = time.monotonic()
            r = d.cmd("wait a", timeout=15)
            dt = time.monotonic() - t0
        finally:
            s.proc.send_signal(signal.SIGCONT)
        assert r[0] == "UNAVAILABLE" and "keepalive" in r[2], r
        assert dt < 5, dt
        assert d.ping()[0] == "OK"


def test_wrong_ca_and_wrong_name_are_refused_by_the_library():
    with Driver(srv.port, extra=["--server-name", "wrong.example"]) as d:
        r = d.ping()
        assert r[0] == "E_TLS" and "hostname mismatch" in r[2], r
    c, k = harness.cert("admin")
    p = subprocess.Popen([DRIVER, "--server", "127.0.0.1:%d" % srv.port, "--ca",
                          pki("other-ca.crt"), "--cert", c, "--key", k],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate("call bastion.v1.Mcp Ping {}\nquit\n", timeout=30)
    assert "ERR E_TLS - " in out and "verification failed" in out, out
    assert p.returncode == 0


def test_generated_stub_works_over_the_adapter():
    with Driver(srv.port) as d:
        assert d.cmd("stub_blocking") == ("OK", {"closure": "response"})
        assert d.cmd("stub_async") == ("OK", {"closure": "response"})


_secrets = None


def dev_secrets():
    """API keys, passwords and the token signing key from scripts/gen-dev-secrets.sh, once."""
    global _secrets
    if _secrets is None:
        d = os.path.join(tempfile.mkdtemp(prefix="bastion-secrets-"), "dev")
        subprocess.run([os.path.join(harness.SRC, "scripts", "gen-dev-secrets.sh"), d],
                       check=True, stdout=subprocess.DEVNULL)
        creds = {}
        with open(os.path.join(d, "dev-credentials.txt")) as f:
            for line in f:
                p = line.split()
                if len(p) == 3 and p[0] in ("api_key", "password"):
                    creds[(p[0], p[1])] = p[2]
        _secrets = {"dir": d, "creds": creds}
    return _secrets


def test_credentials_per_channel_and_per_call_reach_the_server():
    sec = dev_secrets()
    d = sec["dir"]
    key = lambda user: sec["creds"][("api_key", user)]  # noqa: E731
    auth = ["auth:", "  api_keys: %s" % os.path.join(d, "api-keys.yaml"),
            "  users: %s" % os.path.join(d, "users.yaml"),
            "  token:", "    signing_key: %s" % os.path.join(d, "token-signing.pem")]
    with harness.Server(extra=auth) as s:
        with Driver(s.port, extra=["--api-key", key("viewer")]) as dr:
            r = dr.call("bastion.v1.Auth", "WhoAmI")
            assert r[0] == "OK" and r[1]["principal"]["name"] == "viewer", r
            assert r[1]["principal"]["mechanism"] == "AUTH_MECHANISM_API_KEY", r
            # A per-call credential replaces the channel's.
            r = dr.call("bastion.v1.Auth", "WhoAmI", opts="--api-key " + key("developer"))
            assert r[0] == "OK" and r[1]["principal"]["name"] == "developer", r
            r = dr.call("bastion.v1.Auth", "WhoAmI", opts="--token bst_not_a_key")
            assert r[0] == "UNAUTHENTICATED", r
            # A password for a JWT, then the JWT as the bearer token of one call.
            r = dr.call("bastion.v1.Auth", "IssueToken",
                        {"username": "operator", "password": sec["creds"][("password", "operator")]})
            assert r[0] == "OK" and r[1]["token"], r
            r = dr.call("bastion.v1.Auth", "WhoAmI", opts="--token " + r[1]["token"])
            assert r[0] == "OK" and r[1]["principal"]["name"] == "operator", r
            assert r[1]["principal"]["mechanism"] == "AUTH_MECHANISM_JWT", r
        rc, out, err = cli("whoami", env={"BASTION_SERVER": "127.0.0.1:%d" % s.port,
                                          "BASTION_CA": pki("ca.crt"),
                                          "BASTION_CERT": harness.cert("admin")[0],
                                          "BASTION_KEY": harness.cert("admin")[1],
                                          "BASTION_TOKEN": key("viewer")})
        assert rc == 0 and "principal:    viewer" in out and "api_key" in out, (out, err)
        rc, out, err = cli("--server", "127.0.0.1:%d" % s.port, "--api-key", "bst_wrong",
                           "whoami")
        assert rc == 3 and err.startswith("UNAUTHENTICATED: "), (rc, err)


def test_example_builds_against_the_installed_library_and_runs():
    prefix = tempfile.mkdtemp(prefix="bastion-install-")
    try:
        subprocess.run(["cmake", "--install", harness.BUILD, "--prefix", prefix], check=True,
                       capture_output=True)
        libdir = os.path.join(prefix, "lib")
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"))
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "bastion"], env=env,
                               check=True, capture_output=True, text=True).stdout.split()
        assert "-I%s/include" % prefix in [f.replace("//", "/") for f in flags] or any(
            f.startswith("-I") and f.endswith("/include") for f in flags), flags
        exe = os.path.join(prefix, "ping-example")
        cc = ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror"]
        if harness.SANITIZED:
            cc += ["-fsanitize=address,undefined"]
        src = os.path.join(harness.SRC, "examples", "ping.c")
        # Nothing from the source tree: only the installed headers and library.
        p = subprocess.run(cc + [src, "-o", exe] + flags, env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        c, k = harness.cert("viewer")
        run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        p = subprocess.run([exe, "127.0.0.1:%d" % srv.port, pki("ca.crt"), c, k],
                           env=run_env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert "pong" in p.stdout and "spiffe://bastion.local/user/viewer" in p.stdout, p.stdout
        ldd = subprocess.run(["ldd", exe], env=run_env, capture_output=True, text=True).stdout
        assert os.path.join(libdir, "libbastion.so") in ldd, ldd
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def test_server_is_alive_at_the_end():
    rc, out, err = cli("ping")
    assert rc == 0 and srv.alive(), err


def main():
    global srv
    for exe in (CLI, DRIVER):
        if not os.path.exists(exe):
            print("FAIL: %s not built" % exe)
            sys.exit(1)
    code = 0
    with harness.Server() as s:
        srv = s
        try:
            harness.run_tests([
                test_cli_ping_answers,
                test_cli_reads_server_and_credentials_from_the_environment,
                test_cli_whoami_table_and_json,
                test_cli_tools_table_and_json,
                test_cli_call_with_key_value_and_with_json_arguments,
                test_cli_tool_error_exits_11_with_the_tools_text,
                test_cli_invalid_argument_exits_5_with_status_name_and_request_id,
                test_cli_resources_and_read,
                test_cli_unknown_resource_exits_6,
                test_cli_permission_denied_exits_4,
                test_cli_unauthenticated_exits_3,
                test_cli_usage_errors_exit_1,
                test_cli_help_documents_commands_and_exit_codes,
                test_cli_connection_refused_exits_2,
                test_cli_server_certificate_from_another_ca_is_refused,
                test_cli_wrong_host_name_is_refused,
                test_cli_client_certificate_from_another_ca_is_refused_by_the_server,
                test_every_rpc_over_the_c_library,
                test_hundred_concurrent_calls_share_one_connection,
                test_deadline_shorter_than_the_call_is_deadline_exceeded,
                test_server_enforces_the_grpc_timeout_the_client_sends,
                test_cancel_in_flight_call_is_cancelled_and_the_channel_stays_usable,
                test_server_restart_the_channel_reconnects,
                test_call_in_flight_when_the_connection_breaks_fails_unavailable,
                test_keepalive_ping_detects_a_frozen_server,
                test_wrong_ca_and_wrong_name_are_refused_by_the_library,
                test_generated_stub_works_over_the_adapter,
                test_credentials_per_channel_and_per_call_reach_the_server,
                test_example_builds_against_the_installed_library_and_runs,
                test_server_is_alive_at_the_end,
            ])
        except SystemExit as e:
            code = e.code
            if code:
                sys.stderr.write("--- bastiond log ---\n%s\n" % srv.logs()[-4000:])
    sys.exit(code)


if __name__ == "__main__":
    main()
