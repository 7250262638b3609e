"""The `bastion` CLI (built on libbastion) against the real bastiond and its simulated cluster.

Every tool of the catalogue is called through the CLI with key=value arguments and with --json,
and its table and `-o json` output are checked against the cluster's state (scale then list_pods
shows the new replicas, delete_pod gets a replacement, restart_deployment sets the restartedAt
annotation, get_pod_logs honours tail_lines, secret values never appear in any output, a
privileged pod is refused with the field named). Then: the exit code of every error class
(against bastiond, and every gRPC code through a scripted server), `can-i` against the example
policy, `login` with a users file whose hash `bastion users hash` made (on a pipe and on a
terminal without echo), `whoami` with the token, `keys generate` whose entry, pasted into an API
keys file, makes the key work, and `keys jwks` naming the kid our tokens carry.

The first test is the session issue 4 asks for (tools, scale, list, logs, restart, events); its
transcript is printed. Run with Debian's /usr/bin/python3."""

import base64
import hashlib
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

CLI = os.path.join(harness.BUILD, "bin", "bastion")
CANARY = "CANARY-cli-secret-5d1e0b"
PASSWORD = "correct horse battery staple 7"
TOOLS = {
    "list_pods": "k8s:pods:list", "list_namespaces": "k8s:namespaces:list",
    "get_pod": "k8s:pods:get", "get_pod_logs": "k8s:pods:logs", "delete_pod": "k8s:pods:delete",
    "restart_pod": "k8s:pods:restart", "list_deployments": "k8s:deployments:list",
    "scale_deployment": "k8s:deployments:scale",
    "restart_deployment": "k8s:deployments:restart", "list_services": "k8s:services:list",
    "list_events": "k8s:events:list", "list_secrets": "k8s:secrets:manage",
    "create_secret": "k8s:secrets:manage", "delete_secret": "k8s:secrets:manage",
    "create_resource": "k8s:resources:create",
}

# Runs whose channel is freed while a connection is still being set up (a deadline cutting a
# handshake short) once leaked in libbastion; they keep LeakSanitizer on to prove it stays fixed.
CUT_SHORT_ENV = {}

srv = None
secrets_dir = None
api_key = None       # made by `bastion keys generate`, pasted into the server's API keys file
OUTPUTS = []         # every stdout and stderr the CLI wrote: no secret value may be in any


# ---- running the CLI -------------------------------------------------------------------------


def base_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}


def cli(*args, user="admin", env=None, stdin=None, server=None):
    """Runs the CLI with the test CA and a client certificate (user=None: neither); returns
    (rc, stdout, stderr)."""
    flags = []
    if user is not None:
        c, k = harness.cert(user)
        flags = ["--ca", os.path.join(harness.certs(), "ca.crt"), "--cert", c, "--key", k,
                 "--server", server or "localhost:%d" % srv.port]
    e = base_env()
    e.update(env or {})
    p = subprocess.run([CLI] + flags + list(args), env=e, input=stdin, capture_output=True,
                       text=True, timeout=60)
    OUTPUTS.append(p.stdout + p.stderr)
    return p.returncode, p.stdout, p.stderr


def ok(*args, **kw):
    rc, out, err = cli(*args, **kw)
    assert rc == 0, "bastion %s: exit %d\n%s%s" % (" ".join(args), rc, out, err)
    assert err == "", err
    return out


def call(tool, *kv, **kw):
    """`bastion call TOOL k=v...` (table) and `-o json`; returns (text, result of the tool)."""
    text = ok("call", tool, *kv, **kw)
    j = json.loads(ok("-o", "json", "call", tool, *kv, **kw))
    assert j.get("is_error") is not True, j
    return text, j[tool]


def call_json(tool, args, **kw):
    """The same through --json '{...}'."""
    text = ok("call", tool, "--json", json.dumps(args), **kw)
    j = json.loads(ok("-o", "json", "call", tool, "--json", json.dumps(args), **kw))
    return text, j[tool]


def change(tool, *kv):
    """A mutating tool, once, with key=value arguments: its table text."""
    return ok("call", tool, *kv)


def change_json(tool, args):
    """A mutating tool, once, with --json arguments and -o json output: the tool's result."""
    j = json.loads(ok("-o", "json", "call", tool, "--json", json.dumps(args)))
    assert j.get("is_error") is not True and tool in j, j
    return j[tool]


def pods(ns, app):
    return json.loads(ok("-o", "json", "call", "list_pods", "namespace=" + ns,
                         "label_selector=app=" + app))["list_pods"].get("pods", [])


def deployment(ns, name):
    for d in call("list_deployments", "namespace=" + ns)[1]["deployments"]:
        if d["name"] == name:
            return d
    raise AssertionError("no deployment %s/%s" % (ns, name))


def manifest(name, replicas):
    return """apiVersion: apps/v1
kind: Deployment
metadata:
  name: %(n)s
spec:
  replicas: %(r)d
  selector:
    matchLabels: {app: %(n)s}
  template:
    metadata:
      labels: {app: %(n)s}
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: web
          image: nginx:1.27.2
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
""" % {"n": name, "r": replicas}


def make_deployment(ns, name, replicas):
    """create_resource with the manifest (multi-line YAML) as a key=value argument."""
    text = change("create_resource", "namespace=" + ns, "manifest=" + manifest(name, replicas))
    assert text.strip() == "deployment.apps/%s created" % name, text
    assert len(pods(ns, name)) == replicas


def run_in_pty(args, answers, env, timeout=30):
    """Runs the CLI on a new pseudo-terminal (its controlling terminal, so /dev/tty works),
    answering each prompt ending in ': ' with the next answer. Returns (exit code, everything
    the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(CLI, [CLI] + args, env)
        finally:
            os._exit(127)
    out, pending = b"", list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
        if pending and out.endswith(b": "):
            # The prompt is out; echo is off before the program reads.
            time.sleep(0.1)
            os.write(fd, pending.pop(0).encode() + b"\n")
            out += b"\x00"   # mark the answer, so the same prompt is not answered twice
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = out.replace(b"\x00", b"").decode("utf-8", "replace")
    OUTPUTS.append(text)
    return os.waitstatus_to_exitcode(status), text


# ---- the session of issue 4 --------------------------------------------------------------------


def test_session_scale_watch_logs_restart_events():
    transcript = []

    def step(*args):
        out = ok(*args)
        transcript.append("$ bastion %s\n%s" % (" ".join(
            a if re.match(r"^[\w.:=/,-]+$", a) else "'%s'" % a for a in args), out))
        return out

    out = step("tools")
    assert len(out.splitlines()) == 1 + len(TOOLS), out
    before = deployment("development", "api")["replicas"]
    out = step("call", "scale_deployment", "namespace=development", "name=api", "replicas=3")
    assert "scaled from %d to 3" % before in out, out
    out = step("call", "list_pods", "namespace=development")
    api_pods = [line.split()[0] for line in out.splitlines()[1:] if line.startswith("api-")]
    assert len(api_pods) == 3, out
    assert len(pods("development", "api")) == 3
    running = [p["name"] for p in pods("development", "api") if p["status"] == "Running"]
    out = step("call", "get_pod_logs", "namespace=development", "name=" + running[0],
               "container=api", "tail_lines=5")
    assert len(out.splitlines()) == 5, out
    time.sleep(1.1)   # restartedAt has a resolution of one second, as kubectl's
    out = step("call", "restart_deployment", "namespace=development", "name=api")
    assert "deployment.apps/api restarted" in out, out
    after = {p["name"] for p in pods("development", "api")}
    assert len(after) == 3 and not after & set(api_pods), (api_pods, after)
    obj = json.loads(ok("read", "k8s://development/deployment/api"))
    stamp = obj["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert stamp == deployment("development", "api")["restarted_at"], (stamp, obj)
    out = step("call", "list_events", "namespace=development")
    assert "Scaled up replica set api-" in out and "to 3 from %d" % before in out, out
    assert "deployment/api" in out, out
    print("---- transcript: bastion against bastiond (issue 4 session) ----")
    print("\n".join(transcript).rstrip())
    print("---- end of transcript ----")
    # Leave the seed as it was for the tests that read it.
    ok("call", "scale_deployment", "--json", '{"namespace":"development","name":"api",'
       '"replicas":%d}' % before)
    assert len(pods("development", "api")) == before


# ---- every tool, key=value and --json ----------------------------------------------------------


def test_tools_lists_the_whole_catalogue_in_table_and_json():
    out = ok("tools")
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert rows == TOOLS, rows
    tools = {t["name"]: t for t in json.loads(ok("-o", "json", "tools"))["tools"]}
    assert {n: t["permission"] for n, t in tools.items()} == TOOLS
    assert tools["delete_pod"]["annotations"]["destructive_hint"] is True


def test_read_only_tools_table_and_json_agree_with_the_cluster():
    text, r = call("list_namespaces")
    names = [n["name"] for n in r["namespaces"]]
    for ns in ("default", "development", "staging", "production", "feature-login",
               "kube-system"):
        assert ns in names and re.search(r"^%s\s+Active" % ns, text, re.M), (ns, text)
    text2, r2 = call_json("list_namespaces", {"label_selector": "env in (staging,production)"})
    assert sorted(n["name"] for n in r2["namespaces"]) == ["production", "staging"], r2

    text, r = call("list_pods", "namespace=production", "label_selector=app=web,tier!=db")
    assert text.split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], text
    assert r["pods"] and all(p["name"] in text for p in r["pods"]), (r, text)
    _, every = call_json("list_pods", {"all_namespaces": True})
    assert {p["namespace"] for p in every["pods"]} >= {"default", "kube-system"}

    name = r["pods"][0]["name"]
    text, g = call("get_pod", "namespace=production", "name=" + name)
    assert g["pod"]["name"] == name and g["pod"]["owner"]["kind"] == "ReplicaSet", g
    assert "Controlled By:" in text and name in text, text

    text, d = call("list_deployments", "namespace=kube-system")
    assert any(x["name"] == "coredns" for x in d["deployments"]) and "coredns" in text, text

    text, s = call("list_services", "namespace=production")
    web = [x for x in s["services"] if x["name"] == "web"][0]
    assert web["type"] == "LoadBalancer" and "80:31380/TCP" in text, (web, text)

    text, ev = call_json("list_events", {"namespace": "feature-login", "type": "Warning"})
    assert ev["events"] and all(e["type"] == "Warning" for e in ev["events"]), ev
    assert text.split()[:3] == ["LAST", "SEEN", "TYPE"], text


def test_get_pod_logs_honours_tail_lines():
    pod = [p for p in pods("production", "payments") if p["restarts"] > 0][0]["name"]
    text, r = call("get_pod_logs", "namespace=production", "name=" + pod, "container=payments",
                   "tail_lines=4")
    assert r["lines"] == 4 and len(text.splitlines()) == 4, (r, text)
    assert text.strip() == r["logs"].strip()
    text, r = call_json("get_pod_logs", {"namespace": "production", "name": pod,
                                         "container": "payments", "tail_lines": 2,
                                         "previous": True})
    assert r["previous"] is True and len(text.splitlines()) == 2, (r, text)
    # Two containers and none named: the cluster's answer is a tool error (exit 11).
    rc, out, err = cli("call", "get_pod_logs", "namespace=production", "name=" + pod)
    assert rc == 11 and "choose one of: [payments log-shipper]" in err, (rc, err)


def test_scale_then_list_pods_and_deployments_show_the_new_count():
    make_deployment("staging", "cli-scale", 1)
    text = change("scale_deployment", "namespace=staging", "name=cli-scale", "replicas=4")
    assert "scaled from 1 to 4" in text, text
    assert len(pods("staging", "cli-scale")) == 4
    lines = [x for x in ok("call", "list_pods", "namespace=staging").splitlines()
             if x.startswith("cli-scale-")]
    assert len(lines) == 4, lines
    assert deployment("staging", "cli-scale")["replicas"] == 4
    r = change_json("scale_deployment", {"namespace": "staging", "name": "cli-scale",
                                         "replicas": 0})
    assert r["previous_replicas"] == 4 and r["deployment"]["replicas"] == 0, r
    assert pods("staging", "cli-scale") == []
    assert not [x for x in ok("call", "list_pods", "namespace=staging").splitlines()
                if x.startswith("cli-scale-")]


def test_delete_pod_gets_a_replacement_and_restart_pod_a_new_name():
    make_deployment("development", "cli-victim", 2)
    before = {p["name"] for p in pods("development", "cli-victim")}
    gone = sorted(before)[0]
    r = change_json("delete_pod", {"namespace": "development", "name": gone})
    assert r["pod"]["name"] == gone and r["pod"]["status"] == "Terminating", r
    after = {p["name"] for p in pods("development", "cli-victim")}
    assert len(after) == 2 and gone not in after, (before, after)
    old = sorted(after)[0]
    text = change("restart_pod", "namespace=development", "name=" + old)
    now = {p["name"] for p in pods("development", "cli-victim")}
    assert len(now) == 2 and old not in now, (old, now)
    new = (now - after).pop()
    assert new.startswith("cli-victim-") and old in text and new in text, (text, new)
    gone = sorted(now)[0]
    text = change("delete_pod", "namespace=development", "name=" + gone)
    assert text.strip() == 'pod "%s" deleted' % gone, text
    assert len(pods("development", "cli-victim")) == 2
    rc, out, err = cli("call", "delete_pod", "namespace=development", "name=" + gone)
    assert rc == 11 and err.strip() == \
        'TOOL_ERROR: Error from server (NotFound): pods "%s" not found' % gone, err


def test_restart_deployment_sets_restarted_at_and_rolls_every_pod():
    make_deployment("development", "cli-roll", 2)
    before = {p["name"] for p in pods("development", "cli-roll")}
    time.sleep(1.1)
    r = change_json("restart_deployment", {"namespace": "development", "name": "cli-roll"})
    d = r["deployment"]
    assert d["restarted_at"] == r["restarted_at"], r
    obj = json.loads(ok("read", "k8s://development/deployment/cli-roll"))
    ann = obj["spec"]["template"]["metadata"]["annotations"]
    assert ann["kubectl.kubernetes.io/restartedAt"] == r["restarted_at"], ann
    after = pods("development", "cli-roll")
    assert len(after) == 2 and not before & {p["name"] for p in after}, (before, after)


def test_secrets_show_key_names_and_never_a_value():
    first = len(OUTPUTS)
    text = change("create_secret", "namespace=staging", "name=cli-secret",
                  'data={"key":"password","value":"%s"}' % CANARY,
                  'data={"key":"user","value":"svc"}')
    assert "secret/cli-secret created" in text, text
    r = change_json("create_secret", {"namespace": "staging", "name": "cli-secret-2",
                                      "data": [{"key": "token", "value": CANARY}]})
    assert r["secret"]["keys"] == ["token"], r
    text, r = call("list_secrets", "namespace=staging")
    mine = [s for s in r["secrets"] if s["name"] == "cli-secret"][0]
    assert mine["keys"] == ["password", "user"] and mine["type"] == "Opaque", mine
    assert re.search(r"^cli-secret\s+Opaque\s+2\b", text, re.M) and "write-only" in text, text
    # The same value again, through --json: a tool error that must not echo it either.
    rc, out, err = cli("call", "create_secret", "--json", json.dumps(
        {"namespace": "staging", "name": "cli-secret",
         "data": [{"key": "password", "value": CANARY}]}))
    assert rc == 11 and "already exists" in err, (rc, err)
    rc, out, err = cli("call", "create_secret", "namespace=staging", "name=bad",
                       'data={"key":"no/slash","value":"%s"}' % CANARY)
    assert rc == 5 and "create_secret.data[0].key" in err, (rc, err)
    obj = json.loads(ok("read", "k8s://staging/secret/cli-secret"))
    assert obj["kind"] == "Secret" and "data" not in obj, obj
    change_json("delete_secret", {"namespace": "staging", "name": "cli-secret"})
    assert "deleted" in change("delete_secret", "namespace=staging", "name=cli-secret-2")
    rc, out, err = cli("call", "delete_secret", "namespace=staging", "name=cli-secret")
    assert rc == 11 and "not found" in err, err
    seen = "".join(OUTPUTS[first:])
    assert CANARY not in seen, "a secret value reached the CLI's output"
    assert "dev-password-not-real" not in ok("-o", "json", "call", "list_secrets",
                                             "namespace=development")
    assert CANARY not in srv.logs()


def test_create_resource_creates_and_refuses_a_privileged_pod_naming_the_field():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cli-lonely"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {
               "allowPrivilegeEscalation": False, "runAsNonRoot": True,
               "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]}}
    text = ok("call", "create_resource", "namespace=default", "manifest=" + json.dumps(pod))
    assert text.strip() == "pod/cli-lonely created", text
    _, g = call("get_pod", "namespace=default", "name=cli-lonely")
    assert g["pod"]["name"] == "cli-lonely"
    pod["metadata"]["name"] = "cli-root"
    pod["spec"]["containers"][0]["securityContext"]["privileged"] = True
    for args in (["manifest=" + json.dumps(pod), "namespace=default"],
                 ["--json", json.dumps({"namespace": "default", "manifest": json.dumps(pod)})]):
        rc, out, err = cli("call", "create_resource", *args)
        assert rc == 5, (rc, out, err)
        assert err.startswith("INVALID_ARGUMENT: create_resource.manifest: ") and \
            "securityContext.privileged: privileged containers are not allowed" in err, err
        assert out == ""
    rc, out, err = cli("call", "get_pod", "namespace=default", "name=cli-root")
    assert rc == 11 and "not found" in err, err


# ---- exit codes --------------------------------------------------------------------------------


def test_exit_code_of_each_error_class_against_bastiond():
    cases = [
        # (args, user, env, exit code, stderr prefix)
        (["frobnicate"], "admin", None, 1, "bastion: unknown command"),
        (["can-i"], "admin", None, 1, "bastion: can-i takes one PERMISSION"),
        (["-n", "default", "whoami"], "admin", None, 1, "bastion: -n/--namespace does not"),
        (["-o", "env", "whoami"], "admin", None, 1, "bastion: -o env does not apply"),
        (["--ttl", "1.5s", "login", "x"], "admin", None, 1, "bastion: --ttl"),
        (["whoami"], "admin", {"BASTION_API_KEY": "bst_" + "A" * 43}, 3,
         "UNAUTHENTICATED: invalid API key"),
        (["call", "list_pods", "namespace=production"], "viewer", None, 4,
         "PERMISSION_DENIED: "),
        (["call", "list_pods", "namespace=Not_A_Label"], "admin", None, 5, "INVALID_ARGUMENT: "),
        (["call", "scale_deployment", "namespace=default", "name=web", "replicas=101"], "admin",
         None, 5, "INVALID_ARGUMENT: scale_deployment.replicas: must be between 0 and 100"),
        (["read", "k8s://default/pod/no-such-pod"], "admin", None, 6, "NOT_FOUND: "),
        (["--timeout", "1ms", "ping"], "admin", CUT_SHORT_ENV, 7,
         "DEADLINE_EXCEEDED: the deadline of 1 ms expired"),
        (["call", "list_pods", "namespace=nope"], "admin", None, 11, "TOOL_ERROR: "),
    ]
    for args, user, env, code, prefix in cases:
        rc, out, err = cli(*args, user=user, env=env)
        assert rc == code and err.startswith(prefix), (args, rc, code, err)
    # Exit 2: nothing listens there.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    rc, out, err = cli("ping", server="localhost:%d" % port)
    assert rc == 2 and err.startswith("E_CONNECT: "), (rc, err)


def test_every_grpc_status_maps_to_its_exit_code():
    """A scripted server (python3-h2) answers each gRPC code: the whole table of usage()."""
    from test_client_hostile import GRPC_HEADERS, HostileServer

    class StatusServer(HostileServer):
        def answer(self, h2c, sock, sid, scenario, conn_no):
            if not scenario.startswith("status:"):
                return super().answer(h2c, sock, sid, scenario, conn_no)
            h2c.send_headers(sid, GRPC_HEADERS + [("grpc-status", scenario[7:]),
                                                  ("grpc-message", "scripted")],
                             end_stream=True)
            sock.sendall(h2c.data_to_send())
            return False

    want = {1: 7, 2: 10, 3: 5, 4: 7, 5: 6, 6: 6, 7: 4, 8: 8, 9: 5, 10: 8, 11: 5, 12: 9, 13: 10,
            14: 2, 15: 10, 16: 3}
    names = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
             "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
             "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
             "UNAUTHENTICATED"]
    hs = StatusServer()
    try:
        for code, exit_code in want.items():
            hs.reset("status:%d" % code)
            rc, out, err = cli("ping", server="localhost:%d" % hs.port, env=CUT_SHORT_ENV)
            assert rc == exit_code and err.startswith("%s: scripted" % names[code]), \
                (code, rc, err)
        hs.reset("bad_status")
        rc, out, err = cli("ping", server="localhost:%d" % hs.port, env=CUT_SHORT_ENV)
        assert rc == 10 and err.startswith("E_PROTOCOL: "), (rc, err)
    finally:
        hs.stop()


# ---- can-i -------------------------------------------------------------------------------------


def test_can_i_answers_as_the_policy_decides_for_the_viewer():
    # configs/rbac-policies.yaml: viewer reads pods, services, deployments, logs and events in
    # default and development; nothing at cluster scope; a deny rule guards kube-system.
    cases = [
        ("viewer", "k8s:pods:list", "development", True, "role:viewer via binding:viewers"),
        ("viewer", "k8s:pods:logs", "default", True, "role:viewer via binding:viewers"),
        ("viewer", "k8s:pods:list", "production", False, "no rule matched"),
        ("viewer", "k8s:pods:list", None, False, "no rule matched"),
        ("viewer", "k8s:pods:delete", "development", False, "no rule matched"),
        ("admin", "k8s:namespaces:list", None, True, "role:admin via binding:admins"),
        ("admin", "k8s:pods:delete", "kube-system", False, "deny:protect-kube-system"),
    ]
    for user, perm, ns, allowed, rule in cases:
        args = ["can-i", perm] + (["-n", ns] if ns else [])
        rc, out, err = cli(*args, user=user)
        assert rc == (0 if allowed else 4) and err == "", (args, rc, out, err)
        rows = dict(re.split(r":\s+", line, 1) for line in out.splitlines())
        scope = "in namespace %s" % ns if ns else "at cluster scope (all namespaces)"
        assert rows["allowed" if allowed else "denied"] == "%s %s" % (perm, scope), out
        assert rows["rule"] == rule and rows["reason"], (args, out)
        rc, out, err = cli("-o", "json", *args, user=user)
        j = json.loads(out)
        assert rc == (0 if allowed else 4) and j["allowed"] is allowed and j["rule"] == rule, j
    # The answers match what the server then does.
    assert cli("call", "list_pods", "namespace=development", user="viewer")[0] == 0
    assert cli("call", "list_pods", "namespace=production", user="viewer")[0] == 4
    assert cli("call", "list_pods", "all_namespaces=true", user="viewer")[0] == 4
    assert cli("call", "delete_pod", "namespace=kube-system", "name=x")[0] == 4


# ---- login, whoami, keys, users ----------------------------------------------------------------


def whoami_rows(out):
    return dict(re.split(r":\s+", line, 1) for line in out.splitlines())


def test_whoami_shows_mechanism_groups_tenant_certificate_and_expiry():
    rows = whoami_rows(ok("whoami", user="viewer"))
    assert rows["principal"] == rows["certificate"] == "spiffe://bastion.local/user/viewer", rows
    assert rows["mechanism"] == "mtls" and rows["groups"] == "-" and rows["tenant"] == "-", rows
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in \d+", rows["expires"]), rows
    assert re.match(r"^[0-9a-f]{64}$", rows["fingerprint"]), rows


def test_login_with_a_hash_from_users_hash_then_whoami_shows_jwt():
    env = {"BASTION_TOKEN": "stale.token.value"}   # login must not send it
    rc, out, err = cli("login", "alice", "--password-stdin", user="viewer", stdin=PASSWORD + "\n",
                       env=env)
    assert rc == 0 and err == "", (rc, out, err)
    rows = whoami_rows(out)
    token = rows["token"]
    assert token.count(".") == 2 and rows["type"] == "Bearer", out
    exp = re.match(r"^(\S+) \(in (\d+)m", rows["expires"])
    assert exp and 13 <= int(exp.group(2)) <= 15, rows   # the default TTL: 15 minutes
    rows = whoami_rows(ok("whoami", user="viewer", env={"BASTION_TOKEN": token}))
    assert rows["principal"] == "alice" and rows["mechanism"] == "jwt", rows
    assert rows["groups"] == "operators" and rows["tenant"] == "team-a", rows
    assert rows["certificate"] == "spiffe://bastion.local/user/viewer", rows
    assert rows["expires"].startswith(exp.group(1)), rows
    # -o env for eval, with a lifetime asked for; -o json.
    rc, out, err = cli("-o", "env", "login", "alice", "--ttl", "2m", "--password-stdin",
                       user="viewer", stdin=PASSWORD)
    assert rc == 0, err
    m = re.match(r"^export BASTION_TOKEN='([\w.-]+)'\n# expires (\S+) \(in (\d+)m", out)
    assert m and int(m.group(3)) in (1, 2), out
    sh = subprocess.run(["sh", "-c", 'eval "$(cat)"; printf %s "$BASTION_TOKEN"'], input=out,
                        capture_output=True, text=True, check=True)
    assert sh.stdout == m.group(1)
    j = json.loads(ok("-o", "json", "login", "alice", "--password-stdin", user="viewer",
                      stdin=PASSWORD))
    assert j["token_type"] == "Bearer" and int(j["expires_at_unix"]) > time.time() + 600, j
    # A wrong password: UNAUTHENTICATED, the one message for every bad login.
    rc, out, err = cli("login", "alice", "--password-stdin", user="viewer", stdin="wrong\n")
    assert rc == 3 and err.startswith("UNAUTHENTICATED: invalid username or password"), err
    # No password, a password too long: refused before any call.
    rc, out, err = cli("login", "alice", "--password-stdin", user="viewer", stdin="")
    assert rc == 1 and "empty password" in err, err
    rc, out, err = cli("login", "alice", "--password-stdin", user="viewer", stdin="x" * 1025)
    assert rc == 1 and "longer than 1024 bytes" in err, err
    assert not any(PASSWORD in o for o in OUTPUTS)


def test_login_and_users_hash_read_the_terminal_without_echo():
    c, k = harness.cert("viewer")
    env = base_env()
    env.update(BASTION_SERVER="localhost:%d" % srv.port, BASTION_CERT=c, BASTION_KEY=k,
               BASTION_CA=os.path.join(harness.certs(), "ca.crt"))
    rc, shown = run_in_pty(["login", "alice"], [PASSWORD], env)
    assert rc == 0, shown
    assert shown.startswith("Password for alice: ") and PASSWORD not in shown, shown
    token = re.search(r"token:\s+(\S+)", shown).group(1)
    rows = whoami_rows(ok("whoami", user="viewer", env={"BASTION_TOKEN": token}))
    assert rows["mechanism"] == "jwt", rows
    # users hash asks twice; the hash it prints logs in.
    rc, shown = run_in_pty(["users", "hash"], ["pty-pass-1", "pty-pass-1"], env)
    assert rc == 0 and "pty-pass-1" not in shown, shown
    assert shown.startswith("Password: \r\nAgain: \r\n$scrypt$ln=15,r=8,p=1$"), shown
    rc, shown = run_in_pty(["users", "hash"], ["pty-pass-1", "pty-pass-2"], env)
    assert rc == 1 and "the two passwords differ" in shown and "$scrypt$" not in shown, shown
    # Ctrl-C at the prompt: the program dies of SIGINT and the terminal has its echo back.
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(CLI, [CLI, "users", "hash"], env)
        finally:
            os._exit(127)
    shown, deadline = b"", time.monotonic() + 20
    while not shown.endswith(b"Password: ") and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            shown += os.read(fd, 1024)
    time.sleep(0.2)   # the prompt is written just before echo goes off
    echo_at_prompt = termios.tcgetattr(fd)[3] & termios.ECHO
    os.kill(pid, signal.SIGINT)
    _, status = os.waitpid(pid, 0)
    echo_after = termios.tcgetattr(fd)[3] & termios.ECHO
    os.close(fd)
    assert echo_at_prompt == 0 and os.WIFSIGNALED(status) and \
        os.WTERMSIG(status) == signal.SIGINT, (shown, echo_at_prompt, status)
    assert echo_after, "the terminal was left without echo"
    # Without a terminal and without --password-stdin: a clear refusal, nothing read.
    p = subprocess.run([CLI, "users", "hash"], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, start_new_session=True, timeout=30)
    assert p.returncode == 1 and "pipe it in with --password-stdin" in p.stderr, p.stderr


def test_repeated_bad_logins_lock_the_user_out_with_exit_8():
    codes = []
    for _ in range(4):
        rc, out, err = cli("login", "mallory", "--password-stdin", user="viewer", stdin="guess")
        codes.append((rc, err.split(":")[0]))
    assert codes[:3] == [(3, "UNAUTHENTICATED")] * 3, codes
    assert codes[3] == (8, "RESOURCE_EXHAUSTED"), codes


def test_keys_generate_entry_matches_the_key_and_the_key_works():
    # The key made in main() was pasted (identity set) into the server's API keys file.
    entry = open(os.path.join(secrets_dir, "api-keys.yaml")).read()
    assert os.stat(os.path.join(secrets_dir, "api-keys.yaml")).st_mode & 0o777 == 0o600
    assert hashlib.sha256(api_key.encode()).hexdigest() in entry
    rows = whoami_rows(ok("whoami", user="viewer", env={"BASTION_API_KEY": api_key}))
    assert rows["principal"] == "ci-bot" and rows["mechanism"] == "api_key", rows
    assert rows["groups"] == "ci", rows
    # -o json: the same facts for scripts; a fresh key each time.
    a = json.loads(ok("-o", "json", "keys", "generate", "--id", "ci-2", user=None))
    b = json.loads(ok("-o", "json", "keys", "generate", "--id", "ci-2", user=None))
    assert a["key"] != b["key"] and re.match(r"^bst_[A-Za-z0-9_-]{43}$", a["key"]), a
    assert a["sha256"] == hashlib.sha256(a["key"].encode()).hexdigest(), a
    assert '  - id: ci-2\n    sha256: "%s"' % a["sha256"] in a["entry"], a
    rc, out, err = cli("keys", "generate", "--id", "no spaces", user=None)
    assert rc == 1 and "--id" in err, err
    rc, out, err = cli("keys", "generate", user=None)
    assert rc == 1 and "needs --id" in err, err


def test_keys_jwks_publishes_the_kid_our_tokens_carry():
    out = ok("keys", "jwks", "--config", srv.config, user=None)
    keys = json.loads(out)["keys"]
    assert len(keys) == 1 and keys[0]["alg"] == "ES256" and keys[0]["use"] == "sig", keys
    assert "d" not in keys[0], "the private key was published"
    token = whoami_rows(ok("login", "alice", "--password-stdin", user="viewer",
                           stdin=PASSWORD))["token"]
    head = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert header["kid"] == keys[0]["kid"] and header["alg"] == "ES256", (header, keys)
    bad = os.path.join(secrets_dir, "no-key.yaml")
    with open(bad, "w") as f:
        f.write("auth:\n  users: users.yaml\n")
    rc, out, err = cli("keys", "jwks", "--config", bad, user=None)
    assert rc == 1 and "auth.token.signing_key is not set" in err, err


def test_users_hash_from_stdin_salts_each_hash():
    a = ok("users", "hash", "--password-stdin", user=None, stdin="same\n").strip()
    b = ok("users", "hash", "--password-stdin", user=None, stdin="same\n").strip()
    assert a != b and a.startswith("$scrypt$ln=15,r=8,p=1$") and len(a.split("$")) == 5, (a, b)
    j = json.loads(ok("-o", "json", "users", "hash", "--password-stdin", user=None,
                      stdin="same"))
    assert j["password_hash"].startswith("$scrypt$"), j


# ---- setup ---------------------------------------------------------------------------------------


def write_secret(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def prepare_secrets():
    """The server's users and API keys files, made the way docs/authentication.md says: the
    password hash by `bastion users hash`, the key and its entry by `bastion keys generate`."""
    global secrets_dir, api_key
    secrets_dir = tempfile.mkdtemp(prefix="bastion-cli-")
    os.chmod(secrets_dir, 0o700)
    h = ok("users", "hash", "--password-stdin", user=None, stdin=PASSWORD + "\n").strip()
    write_secret(os.path.join(secrets_dir, "users.yaml"),
                 "users:\n  - username: alice\n    password_hash: \"%s\"\n"
                 "    groups: [operators]\n    tenant: team-a\n    enabled: true\n" % h)
    out = ok("keys", "generate", "--id", "ci-1", user=None)
    assert "shown only now" in out, out
    api_key = re.search(r"^\s+(bst_[A-Za-z0-9_-]{43})$", out, re.M).group(1)
    entry = out[out.index("  - id: ci-1"):]
    digest = re.search(r'sha256: "([0-9a-f]{64})"', entry).group(1)
    assert digest == hashlib.sha256(api_key.encode()).hexdigest(), (digest, entry)
    # What an operator does with the entry: set identity and groups, paste under `keys:`.
    entry = entry.replace('"CHANGE-ME"', '"ci-bot"').replace("groups: []", "groups: [ci]")
    write_secret(os.path.join(secrets_dir, "api-keys.yaml"), "keys:\n" + entry)
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", os.path.join(secrets_dir, "signing.pem")],
                   check=True, capture_output=True)
    os.chmod(os.path.join(secrets_dir, "signing.pem"), 0o600)
    return ["auth:",
            "  api_keys: %s" % os.path.join(secrets_dir, "api-keys.yaml"),
            "  users: %s" % os.path.join(secrets_dir, "users.yaml"),
            "  failed_credentials_per_address: 0",
            "  token:",
            "    issuer: bastion-cli-test",
            "    audience: bastion-cli-test-api",
            "    signing_key: %s" % os.path.join(secrets_dir, "signing.pem"),
            "    alg: ES256",
            "  login:",
            "    max_failures_per_user: 3",
            "    max_failures_per_address: 100",
            "    lockout: 1m"]


def main():
    global srv
    tests = [
        test_session_scale_watch_logs_restart_events,
        test_tools_lists_the_whole_catalogue_in_table_and_json,
        test_read_only_tools_table_and_json_agree_with_the_cluster,
        test_get_pod_logs_honours_tail_lines,
        test_scale_then_list_pods_and_deployments_show_the_new_count,
        test_delete_pod_gets_a_replacement_and_restart_pod_a_new_name,
        test_restart_deployment_sets_restarted_at_and_rolls_every_pod,
        test_secrets_show_key_names_and_never_a_value,
        test_create_resource_creates_and_refuses_a_privileged_pod_naming_the_field,
        test_exit_code_of_each_error_class_against_bastiond,
        test_every_grpc_status_maps_to_its_exit_code,
        test_can_i_answers_as_the_policy_decides_for_the_viewer,
        test_whoami_shows_mechanism_groups_tenant_certificate_and_expiry,
        test_login_with_a_hash_from_users_hash_then_whoami_shows_jwt,
        test_login_and_users_hash_read_the_terminal_without_echo,
        test_repeated_bad_logins_lock_the_user_out_with_exit_8,
        test_keys_generate_entry_matches_the_key_and_the_key_works,
        test_keys_jwks_publishes_the_kid_our_tokens_carry,
        test_users_hash_from_stdin_salts_each_hash,
    ]
    extra = prepare_secrets()
    srv = harness.Server(extra=extra)
    code = 1
    try:
        with srv:
            try:
                harness.run_tests(tests)
            except SystemExit as e:   # run_tests exits; stop the server cleanly first
                code = e.code
    finally:
        shutil.rmtree(secrets_dir, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
