"""Authorization through the real bastiond (issue 6), with a stock gRPC client (python3-grpcio).

* The matrix: the example policy's roles (the dev certificates admin, operator, viewer,
  developer) x every tool x the namespaces default, development, staging, production,
  feature-login, kube-system, plus the all-namespaces form of the list tools and the cluster
  scope of list_namespaces. The expected decision and rule of every cell come from this file's
  own model of docs/security.md (`decide` below, with the policy transcribed from the tables
  there), never from bastion-rbac or the YAML file. Each cell is one real CallTool, one CanI and
  the call's audit records (the request record, and for a denial the authorization event),
  which must all agree with the model; allowed cells must really run the tool (the objects
  they touch are looked up or created just before, and read-only tools go first, so
  destructive cells never take away what a later cell needs). The same for ListResources and
  ReadResource of every kind in every namespace.
* Glob edge cases, deny precedence (a second matrix over policies/deny-precedence.yaml),
  tenant isolation with API keys and certificate-identity mapping (a third matrix over
  policies/tenants.yaml), reload under a stream of calls, hostile policies refused at startup
  with file:line:column (policies/hostile/ plus bombs generated here), and the audit record
  of a denial.

Run with Debian's /usr/bin/python3 (BASTION_SRC, BASTION_BUILD)."""

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
POLICIES = os.path.join(HERE, "policies")
EXAMPLE_POLICY = os.path.join(harness.SRC, "configs", "rbac-policies.yaml")
AUDIT_TOOL = os.path.join(harness.BUILD, "bin", "bastion-audit")
SPIFFE = "spiffe://bastion.local/user/"
CANARY = "CANARY-rbac-5e1d07"
PD = grpc.StatusCode.PERMISSION_DENIED
msgs = None
timings = {}

# ---- the tools ---------------------------------------------------------------------------------

# name -> (permission, scope): "ns" takes one namespace, "ns+all" also all_namespaces: true,
# "cluster" takes none. ListTools must list exactly these (test_list_tools_matches_the_matrix).
TOOLS = {
    "list_pods": ("k8s:pods:list", "ns+all"),
    "list_namespaces": ("k8s:namespaces:list", "cluster"),
    "get_pod": ("k8s:pods:get", "ns"),
    "get_pod_logs": ("k8s:pods:logs", "ns"),
    "delete_pod": ("k8s:pods:delete", "ns"),
    "restart_pod": ("k8s:pods:restart", "ns"),
    "list_deployments": ("k8s:deployments:list", "ns+all"),
    "scale_deployment": ("k8s:deployments:scale", "ns"),
    "restart_deployment": ("k8s:deployments:restart", "ns"),
    "list_services": ("k8s:services:list", "ns+all"),
    "list_events": ("k8s:events:list", "ns+all"),
    "list_secrets": ("k8s:secrets:manage", "ns"),
    "create_secret": ("k8s:secrets:manage", "ns"),
    "delete_secret": ("k8s:secrets:manage", "ns"),
    "create_resource": ("k8s:resources:create", "ns"),
}
# MCP resources: ReadResource k8s://NS/KIND/NAME needs the kind's permission in NS (the table
# in server/catalogue.c; docs/security.md does not list k8s:configmaps:get yet), ListResources
# the cluster-scoped k8s:namespaces:list.
RESOURCE_KINDS = {
    "pod": "k8s:pods:get", "deployment": "k8s:deployments:list",
    "replicaset": "k8s:deployments:list", "service": "k8s:services:list",
    "configmap": "k8s:configmaps:get", "secret": "k8s:secrets:manage",
}
PERMISSIONS = sorted({p for p, _ in TOOLS.values()} | set(RESOURCE_KINDS.values()))
NAMESPACES = ["default", "development", "staging", "production", "feature-login", "kube-system"]
ALL = None  # the namespace of an all-namespaces or cluster-scoped request


def scopes(tool):
    """The namespaces a matrix cell of this tool is tried in (ALL = all / cluster scope)."""
    kind = TOOLS[tool][1]
    if kind == "cluster":
        return [ALL]
    return NAMESPACES + ([ALL] if kind == "ns+all" else [])


def every_cell(namespaces):
    """(tool, namespace) for every tool in these namespaces, plus its all/cluster form."""
    for tool, (_, kind) in TOOLS.items():
        if kind == "cluster":
            yield tool, ALL
            continue
        for ns in namespaces + ([ALL] if kind == "ns+all" else []):
            yield tool, ns


# ---- the policy model (docs/security.md, "Authorization") -------------------------------------

LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def valid_ns(ns):
    return isinstance(ns, str) and LABEL.fullmatch(ns) is not None


def ns_match(pattern, ns):
    """`prod` exactly, `feature-*` a label starting `feature-`, `*` any one label."""
    if not valid_ns(ns):
        return False
    if pattern.endswith("*"):
        return ns.startswith(pattern[:-1])
    return ns == pattern


def admits(patterns, ns):
    """A grant: no restriction = everywhere and cluster scope; else one matching namespace."""
    if patterns is None:
        return True
    return ns is not None and any(ns_match(p, ns) for p in patterns)


def covers(patterns, ns):
    """A deny rule: "all namespaces" includes the ones it names."""
    return patterns is None or ns is None or any(ns_match(p, ns) for p in patterns)


def grants(pattern, perm):
    """`k8s:pods:*` grants every pods permission, `k8s:*` every permission."""
    if pattern.endswith(":*"):
        return perm.startswith(pattern[:-1])
    return pattern == perm


def names(subject, who):
    (kind, value), = subject.items()
    if kind == "user":
        return who.get("name") == value
    if kind == "group":
        return value in who.get("groups", ())
    if kind == "cert":
        return who.get("cert") == value
    if kind == "apikey":
        return who.get("apikey") == value
    raise AssertionError(kind)


class Policy:
    def __init__(self, roles, bindings, tenants=(), deny=()):
        self.roles = roles          # name -> (permissions, namespaces or None)
        self.bindings = bindings    # [(name, subjects, roles, namespaces or None)]
        self.tenants = tenants      # [(name, patterns, members)]
        self.deny = deny            # [(name, permissions, namespaces or None, subjects or None)]

    def decide(self, who, perm, ns):
        """(allowed, rule) for principal `who` (a dict), permission, namespace (None = all)."""
        if ns is not None and not valid_ns(ns):
            return False, "invalid namespace"
        if perm not in PERMISSIONS:
            return False, "unknown permission"
        tenants = {t[0]: t for t in self.tenants}

        def confines(t):
            return "tenant:%s confines to %s" % (t[0], ",".join(t[1]))
        if who.get("tenant") is not None:
            t = tenants.get(who["tenant"])
            if t is None:
                return False, "tenant:%s undefined" % who["tenant"]
            if not (ns is not None and any(ns_match(p, ns) for p in t[1])):
                return False, confines(t)
        for t in self.tenants:
            if any(names(s, who) for s in t[2]) and not (
                    ns is not None and any(ns_match(p, ns) for p in t[1])):
                return False, confines(t)
        for name, perms, nss, subjects in self.deny:
            if (any(grants(p, perm) for p in perms) and covers(nss, ns)
                    and (subjects is None or any(names(s, who) for s in subjects))):
                return False, "deny:" + name
        for name, subjects, roles, nss in self.bindings:
            if not any(names(s, who) for s in subjects) or not admits(nss, ns):
                continue
            for r in roles:
                rperms, rns = self.roles[r]
                if any(grants(p, perm) for p in rperms) and admits(rns, ns):
                    return True, "role:%s via binding:%s" % (r, name)
        for p in who.get("carries", ()):
            if grants(p, perm):
                return True, "carried:%s via api_key" % p
        return False, "no rule matched"


def cert_subject(name):
    return [{"cert": SPIFFE + name}]


# configs/rbac-policies.yaml as docs/security.md describes it ("The example policy").
READ = ["k8s:pods:list", "k8s:pods:get", "k8s:pods:logs"]
EXAMPLE = Policy(
    roles={
        "viewer": (READ + ["k8s:services:list", "k8s:deployments:list", "k8s:events:list"],
                   ["default", "development"]),
        "operator": (["k8s:pods:*", "k8s:services:list", "k8s:deployments:*", "k8s:events:list"],
                     ["default", "development", "staging"]),
        "admin": (["k8s:*"], None),
        "developer": (READ + ["k8s:deployments:list", "k8s:deployments:scale",
                              "k8s:events:list"], ["development", "feature-*"]),
        "tenant-operator": (["k8s:pods:*", "k8s:deployments:*", "k8s:services:list",
                             "k8s:events:list"], ["*"]),
    },
    bindings=[("admins", cert_subject("admin"), ["admin"], None),
              ("operators", cert_subject("operator"), ["operator"], None),
              ("viewers", cert_subject("viewer"), ["viewer"], None),
              ("developers", cert_subject("developer"), ["developer"], None),
              ("acme-operators", [{"group": "acme-ops"}], ["tenant-operator"], None)],
    tenants=[("acme", ["acme-*"], [{"group": "acme-ops"}])],
    deny=[("protect-kube-system", ["k8s:pods:delete", "k8s:secrets:manage",
                                   "k8s:resources:create"], ["kube-system"], None)])

# tests/integration/policies/deny-precedence.yaml, transcribed.
DENY_PRECEDENCE = Policy(
    roles={"everything": (["k8s:*"], None),
           "pod-worker": (["k8s:pods:list", "k8s:pods:get", "k8s:pods:logs", "k8s:pods:delete"],
                          ["staging", "production"])},
    bindings=[("admins", cert_subject("admin"), ["everything"], None),
              ("operators", cert_subject("operator"), ["pod-worker"], None),
              ("developers-everywhere", cert_subject("developer"), ["everything"], None)],
    deny=[("admin-no-prod-pod-deletes", ["k8s:pods:delete"], ["production"],
           cert_subject("admin")),
          ("operator-no-staging-pods", ["k8s:pods:*"], ["staging"], cert_subject("operator")),
          ("no-prod-service-listing", ["k8s:services:list"], ["production"], None),
          ("no-feature-secrets", ["k8s:secrets:manage"], ["feature-*"], None),
          ("developer-no-namespace-listing-or-creates",
           ["k8s:namespaces:list", "k8s:resources:create"], None, cert_subject("developer")),
          ("everyone-no-prod-pod-deletes", ["k8s:pods:delete"], ["production"], None)])

# tests/integration/policies/tenants.yaml, transcribed.
TENANTS = Policy(
    roles={"everything": (["k8s:*"], None), "pods-anywhere": (["k8s:pods:*"], ["*"])},
    bindings=[("superusers", [{"group": "superusers"}], ["everything"], None),
              ("operator-cert", cert_subject("operator"), ["everything"], None),
              ("admin-cert", cert_subject("admin"), ["everything"], None),
              ("pod-people", [{"group": "pod-people"}], ["pods-anywhere"], None),
              ("keyed-pods", [{"apikey": "keyed"}], ["pods-anywhere"], None)],
    tenants=[("acme", ["acme-*"], []),
             ("globex", ["globex-*", "shared-globex"], [{"group": "globex-ops"}])],
    deny=[("no-vault-secrets", ["k8s:secrets:manage"], ["acme-vault"], None)])


def cert_principal(name):
    return {"name": SPIFFE + name, "cert": SPIFFE + name, "groups": []}


# ---- calling -----------------------------------------------------------------------------------


class Outcome:
    def __init__(self, code, details, response, request_id):
        self.code, self.details, self.response, self.request_id = (code, details, response,
                                                                   request_id)

    def __repr__(self):
        if self.code == grpc.StatusCode.OK:
            return "OK(%r)" % str(self.response)[:160]
        return "%s(%r)" % (self.code.name, self.details)


def request_id_of(md):
    for k, v in md or ():
        if k == "x-request-id" and v:
            return v
    return None


def rpc(ch, method, request, response_type, metadata=None):
    """One unary call; never raises for a gRPC status: the Outcome holds it, with the
    x-request-id the server answered (for finding the call's audit records)."""
    try:
        resp, call = harness.unary(ch, msgs, method, request, response_type, metadata=metadata,
                                   with_call=True)
        return Outcome(grpc.StatusCode.OK, "", resp, request_id_of(call.initial_metadata()))
    except grpc.RpcError as e:
        rid = request_id_of(e.trailing_metadata()) or request_id_of(e.initial_metadata())
        return Outcome(e.code(), e.details(), None, rid)


def call_tool(ch, tool, args, metadata=None):
    """CallTool with arguments given as proto-JSON (proto field names)."""
    req = msgs["bastion.v1.CallToolRequest"]()
    json_format.ParseDict({"name": tool, tool: args}, req)
    return rpc(ch, "/bastion.v1.Mcp/CallTool", req, "bastion.v1.CallToolResponse", metadata)


def can_i(ch, perm, ns, metadata=None):
    """Auth.CanI; ns None leaves the namespace out (cluster scope / all namespaces)."""
    req = msgs["bastion.v1.CanIRequest"](permission=perm)
    if ns is not None:
        req.namespace = ns
    return harness.unary(ch, msgs, "/bastion.v1.Auth/CanI", req, "bastion.v1.CanIResponse",
                         metadata=metadata)


def read_resource(ch, uri):
    return rpc(ch, "/bastion.v1.Mcp/ReadResource",
               msgs["bastion.v1.ReadResourceRequest"](uri=uri), "bastion.v1.ReadResourceResponse")


def list_resources(ch, cursor=""):
    return rpc(ch, "/bastion.v1.Mcp/ListResources",
               msgs["bastion.v1.ListResourcesRequest"](cursor=cursor),
               "bastion.v1.ListResourcesResponse")


def must(ch, tool, **args):
    o = call_tool(ch, tool, args)
    assert o.code == grpc.StatusCode.OK and not o.response.is_error, (tool, args, o)
    return o.response


def denial_message(perm, ns):
    if ns is None:
        return "permission %s denied across all namespaces (cluster scope)" % perm
    return "permission %s denied in namespace %s" % (perm, ns)


def configmap(name):
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\n"
            "data: {made-by: test-rbac}\n" % name)


def audit_records(srv):
    r = subprocess.run([AUDIT_TOOL, "cat", "--dir", srv.audit_dir], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]


# ---- the matrix --------------------------------------------------------------------------------


class Matrix:
    """Runs cells against one server. `setup` is a channel whose principal may list pods and
    deployments everywhere and create secrets where the cells need them; it prepares the
    objects an allowed cell acts on just before the call, so each cell runs the real tool."""

    def __init__(self, srv, policy, setup):
        self.srv, self.policy, self.setup = srv, policy, setup
        self.serial = 0
        self.cells = []  # (label, expected allowed, expected rule, request id, perm, ns)
        self.failures = []

    def pod(self, ns, running):
        """A single-container pod a deployment owns (a delete brings a replacement). Replacements
        stay Pending for a while in the simulated cluster, so only get_pod_logs asks for a
        running one, and read-only cells run before the mutating ones (read_first)."""
        pods = must(self.setup, "list_pods", namespace=ns).list_pods.pods
        for p in pods:
            labels = {lab.key: lab.value for lab in p.labels}
            if ("pod-template-hash" in labels and p.total_containers == 1
                    and (p.phase == "Running" or not running)):
                return p.name
        raise AssertionError("no %sdeployment pod in %s" % ("running " if running else "", ns))

    def deployment(self, ns):
        d = must(self.setup, "list_deployments", namespace=ns).list_deployments.deployments[0]
        return d.name, d.replicas

    def arguments(self, tool, ns, expect_allowed):
        """The arguments of a cell, naming objects that exist (or, for the create tools, do not
        exist yet), so that an allowed cell must succeed, not merely escape a denial."""
        self.serial += 1
        tag = "rbac-m%d" % self.serial
        if ns is ALL:
            return {"all_namespaces": True} if TOOLS[tool][1] == "ns+all" else {}
        a = {"namespace": ns}
        if tool in ("get_pod", "get_pod_logs", "delete_pod", "restart_pod"):
            a["name"] = self.pod(ns, tool == "get_pod_logs")
            if tool == "get_pod_logs":
                a["tail_lines"] = 3
        elif tool in ("scale_deployment", "restart_deployment"):
            a["name"], replicas = self.deployment(ns)
            if tool == "scale_deployment":
                a["replicas"] = replicas  # the same count: nothing else changes
        elif tool == "create_secret":
            a.update(name=tag, data=[{"key": "k", "value": "v"}])
        elif tool == "delete_secret":
            a["name"] = tag
            if expect_allowed:
                must(self.setup, "create_secret", namespace=ns, name=tag,
                     data=[{"key": "k", "value": "v"}])
        elif tool == "create_resource":
            a["manifest"] = configmap(tag)
        return a

    def cell(self, who_name, who, ch, tool, ns, metadata=None):
        """One CallTool cell: the tool's permission in ns (ALL = all namespaces / cluster)."""
        perm = TOOLS[tool][0]
        want, rule = self.policy.decide(who, perm, ns)
        got = call_tool(ch, tool, self.arguments(tool, ns, want), metadata)
        self.judge("%s %s %s" % (who_name, tool, "<all>" if ns is ALL else ns), ch, metadata,
                   perm, ns, want, rule, got, True)

    def resource_cell(self, who_name, who, ch, kind, ns, name):
        """One ReadResource cell: k8s://NS/KIND/NAME needs the kind's permission in NS. name
        None: no such object (an allowed read is then NOT_FOUND, still not a denial)."""
        perm = RESOURCE_KINDS[kind]
        want, rule = self.policy.decide(who, perm, ns)
        got = read_resource(ch, "k8s://%s/%s/%s" % (ns, kind, name or "rbac-absent"))
        self.judge("%s ReadResource %s %s" % (who_name, kind, ns), ch, None, perm, ns, want,
                   rule, got, name is not None)

    def judge(self, label, ch, metadata, perm, ns, want, rule, got, strict):
        """Compares a call's outcome, CanI's answer and the model's; records the cell."""
        ci = can_i(ch, perm, ns, metadata)
        problems = []
        if want:
            if got.code == PD:
                problems.append("denied, expected allowed by %s" % rule)
            elif strict and (got.code != grpc.StatusCode.OK
                             or getattr(got.response, "is_error", False)):
                problems.append("allowed but the call failed")
        else:
            if got.code != PD:
                problems.append("expected PERMISSION_DENIED by %s" % rule)
            elif got.details != denial_message(perm, ns):
                problems.append("denial message %r" % got.details)
        if ci.allowed != want or ci.rule != rule:
            problems.append("CanI says allowed=%s rule=%r, expected %s %r" % (
                ci.allowed, ci.rule, want, rule))
        if (got.code == PD) == ci.allowed:
            problems.append("CanI disagrees with the call")
        if problems:
            self.failures.append("%s: %s; got %r" % (label, "; ".join(problems), got))
        self.cells.append((label, want, rule, got.request_id, perm, ns))

    def check_audit(self):
        """Every cell's call left exactly one request record with the decision and the deciding
        rule, and a denial also one authorization event naming the same rule (the default
        `events: {authorization: denials}`)."""
        by_id = {}
        for rec in audit_records(self.srv):
            if rec.get("request_id"):
                by_id.setdefault(rec["request_id"], []).append(rec)
        bad = []
        for label, want, rule, rid, perm, ns in self.cells:
            recs = by_id.get(rid or "", [])
            kinds = sorted(r.get("event_type") for r in recs)
            expect_kinds = (["AUDIT_EVENT_REQUEST"] if want else
                            ["AUDIT_EVENT_AUTHORIZATION", "AUDIT_EVENT_REQUEST"])
            if kinds != expect_kinds:
                bad.append("%s: audit records %r for request id %r" % (label, kinds, rid))
                continue
            expect = ("AUDIT_DECISION_ALLOW" if want else "AUDIT_DECISION_DENY", rule, perm,
                      ns or "")
            for rec in recs:
                seen = (rec.get("decision"), rec.get("decision_rule"), rec.get("permission"),
                        rec.get("namespace", ""))
                if seen != expect:
                    bad.append("%s: audit %s %r, expected %r" % (label, rec.get("event_type"),
                                                                seen, expect))
        assert not bad, "%d audit mismatches:\n%s" % (len(bad), "\n".join(bad[:30]))

    def report(self):
        assert not self.failures, "%d of %d cells wrong:\n%s" % (
            len(self.failures), len(self.cells), "\n".join(self.failures[:40]))


READ_ONLY = ("list_pods", "list_namespaces", "get_pod", "get_pod_logs", "list_deployments",
             "list_services", "list_events", "list_secrets")


def read_first(cells):
    """Read-only tools first, then the mutating ones: a mutating cell (allowed, or mistakenly
    allowed) cannot take away what a read-only cell looks at."""
    return sorted(cells, key=lambda c: c[0] not in READ_ONLY)


def run_cells(m, principals, namespaces):
    """Every principal (label, model principal, channel, metadata) x every tool x namespaces
    (plus the all-namespaces / cluster form), read-only tools first."""
    for tool, ns in read_first(list(every_cell(namespaces))):
        for label, who, ch, md in principals:
            m.cell(label, who, ch, tool, ns, md)


def run_matrix(policy_path, policy, roles, setup_name="admin"):
    start = time.monotonic()
    with harness.Server(policy=policy_path) as srv:
        setup = harness.grpc_channel(srv.port, setup_name)
        m = Matrix(srv, policy, setup)
        chans = {r: harness.grpc_channel(srv.port, r) for r in roles}
        run_cells(m, [(r, cert_principal(r), chans[r], None) for r in roles], NAMESPACES)
        m.report()
        m.check_audit()
        for ch in list(chans.values()) + [setup]:
            ch.close()
    return len(m.cells), time.monotonic() - start, m


# ---- tests -------------------------------------------------------------------------------------


def test_list_tools_matches_the_matrix():
    """The matrix covers every tool the server has, with the permission the catalogue names."""
    with harness.Server() as srv, harness.grpc_channel(srv.port, "viewer") as ch:
        r = harness.unary(ch, msgs, "/bastion.v1.Mcp/ListTools",
                          msgs["bastion.v1.ListToolsRequest"](), "bastion.v1.ListToolsResponse")
        listed = {t.name: t.permission for t in r.tools}
        assert listed == {t: p for t, (p, _) in TOOLS.items()}, listed
        for t in r.tools:
            props = json.loads(t.input_schema_json).get("properties", {})
            kind = TOOLS[t.name][1]
            assert ("namespace" in props) == (kind != "cluster"), (t.name, props)
            assert ("all_namespaces" in props) == (kind == "ns+all"), (t.name, props)


def test_example_policy_matrix_roles_x_tools_x_namespaces():
    roles = ["admin", "operator", "viewer", "developer"]
    n, secs, m = run_matrix(EXAMPLE_POLICY, EXAMPLE, roles)
    allowed = sum(1 for c in m.cells if c[1])
    timings["example matrix"] = "%d cells (%d allowed, %d denied) in %.1f s" % (
        n, allowed, n - allowed, secs)
    assert n == len(roles) * sum(len(scopes(t)) for t in TOOLS), n
    # The model is not vacuous: every role has both outcomes, kube-system's deny rule decides
    # for the admin, and the all-namespaces form is refused to every restricted role.
    rules = {c[2] for c in m.cells}
    assert {"deny:protect-kube-system", "no rule matched", "role:admin via binding:admins",
            "role:developer via binding:developers"} <= rules, rules


def test_example_policy_matrix_over_resources():
    """ListResources and ReadResource of every kind in every namespace, for the four roles."""
    roles = ["admin", "operator", "viewer", "developer"]
    start = time.monotonic()
    with harness.Server() as srv:
        setup = harness.grpc_channel(srv.port, "admin")
        objects, cursor = {}, ""
        while True:
            page = list_resources(setup, cursor)
            assert page.code == grpc.StatusCode.OK, page
            for r in page.response.resources:
                ns, kind, name = r.uri[len("k8s://"):].split("/")
                objects.setdefault((ns, kind), name)
            cursor = page.response.next_cursor
            if not cursor:
                break
        assert {k for _, k in objects} == set(RESOURCE_KINDS), objects
        m = Matrix(srv, EXAMPLE, setup)
        for role in roles:
            who = cert_principal(role)
            with harness.grpc_channel(srv.port, role) as ch:
                want, rule = EXAMPLE.decide(who, "k8s:namespaces:list", ALL)
                m.judge("%s ListResources" % role, ch, None, "k8s:namespaces:list", ALL, want,
                        rule, list_resources(ch), True)
                for kind in RESOURCE_KINDS:
                    for ns in NAMESPACES:
                        m.resource_cell(role, who, ch, kind, ns, objects.get((ns, kind)))
        m.report()
        m.check_audit()
        setup.close()
    allowed = sum(1 for c in m.cells if c[1])
    timings["resources matrix"] = "%d cells (%d allowed) in %.1f s" % (
        len(m.cells), allowed, time.monotonic() - start)


def test_deny_beats_allow_matrix():
    """Every deny rule of deny-precedence.yaml names something a bound role allows."""
    roles = ["admin", "operator", "developer", "viewer"]
    n, secs, m = run_matrix(os.path.join(POLICIES, "deny-precedence.yaml"), DENY_PRECEDENCE,
                            roles)
    timings["deny-precedence matrix"] = "%d cells in %.1f s" % (n, secs)
    rules = {c[2] for c in m.cells}
    for name, *_ in DENY_PRECEDENCE.deny[:-1]:
        assert "deny:" + name in rules, (name, rules)
    # The later, overlapping rule never names a decision: the first in file order does.
    assert "deny:everyone-no-prod-pod-deletes" in rules  # for the operator and developer
    labels = {c[0]: c[2] for c in m.cells}
    assert labels["admin delete_pod production"] == "deny:admin-no-prod-pod-deletes"
    assert labels["admin list_services <all>"] == "deny:no-prod-service-listing"
    assert labels["admin list_services staging"] == "role:everything via binding:admins"
    assert labels["operator list_pods staging"] == "deny:operator-no-staging-pods"
    assert labels["operator list_pods production"] == "role:pod-worker via binding:operators"


def test_glob_edge_cases_through_the_server():
    bad = ["feature-", "FEATURE-login", "Feature-login", "feature-x/../prod", "feature-login\n",
           "feature-x\n", " feature-login", "feature-login ", "feature-%2F", "feature-x.y",
           "feature_login", "feature-" + "x" * 56, "-feature", "feature-login\x00",
           "feature-l\u0130gin"]
    with harness.Server() as srv:
        dev = harness.grpc_channel(srv.port, "developer")
        admin = harness.grpc_channel(srv.port, "admin")
        # The glob allows what it should, in an existing and in a not-yet-existing namespace.
        pods = must(dev, "list_pods", namespace="feature-login").list_pods.pods
        assert pods and all(p.namespace == "feature-login" for p in pods), pods
        for ns in ("feature-login", "feature-x-2", "feature-0", "feature-" + "x" * 55):
            assert len(ns) <= 63
            r = can_i(dev, "k8s:pods:list", ns)
            assert r.allowed and r.rule == "role:developer via binding:developers", (ns, r)
            o = call_tool(dev, "list_pods", {"namespace": ns})
            assert o.code == grpc.StatusCode.OK, (ns, o)
        # Near misses that are valid labels: denied by the policy, not by validation.
        for ns in ("feature", "featurex", "features-login", "my-feature-login", "xfeature-login",
                   "production"):
            o = call_tool(dev, "list_pods", {"namespace": ns})
            assert o.code == PD and o.details == denial_message("k8s:pods:list", ns), (ns, o)
            r = can_i(dev, "k8s:pods:list", ns)
            assert not r.allowed and r.rule == "no rule matched", (ns, r)
        # Not labels: refused as invalid by validation, for the restricted developer and for the
        # unrestricted admin alike, for every tool that takes a namespace; CanI never allows.
        for ns in bad + [""]:
            for who, ch in (("developer", dev), ("admin", admin)):
                for tool, (perm, kind) in TOOLS.items():
                    if kind == "cluster":
                        continue
                    args = {"namespace": ns, "name": "x", "replicas": 1,
                            "manifest": configmap("x")}
                    allowed_keys = {f.name for f in msgs[
                        "bastion.v1." + "".join(w.title() for w in tool.split("_")) + "Args"
                    ].DESCRIPTOR.fields}
                    o = call_tool(ch, tool, {k: v for k, v in args.items() if k in allowed_keys})
                    assert o.code == grpc.StatusCode.INVALID_ARGUMENT, (who, tool, ns, o)
                    assert "namespace" in o.details, (who, tool, ns, o)
                try:
                    r = can_i(ch, "k8s:pods:list", ns)
                    assert not r.allowed and r.rule == "invalid namespace", (who, ns, r)
                except grpc.RpcError as e:
                    # A NUL byte is refused by request validation before the policy is asked.
                    assert "\x00" in ns and e.code() == grpc.StatusCode.INVALID_ARGUMENT, (ns, e)
        # An empty namespace never means "all namespaces" (CanI: absent = cluster scope).
        assert can_i(admin, "k8s:pods:list", None).allowed
        assert not can_i(admin, "k8s:pods:list", "").allowed
        # Wildcards are grants, not permissions one can ask for.
        for perm in ("k8s:*", "k8s:pods:*", "k8s:pods:lst", "K8S:pods:list"):
            r = can_i(admin, perm, "default")
            assert not r.allowed and r.rule == "unknown permission", (perm, r)
        dev.close()
        admin.close()


# -- tenants ---------------------------------------------------------------------------------------

TENANT_SEED = """cluster:
  version: v1.31.4
  random_seed: 7
  nodes:
    - name: worker-1
namespaces:
%s"""
TENANT_NAMESPACES = ["acme-web", "acme-vault", "globex-web", "shared-globex", "default",
                     "kube-system"]


def seed_namespace(ns):
    return """  - name: %s
    age: 30d
    deployments:
      - name: web
        age: 3d
        replicas: 2
        labels: {app: web}
        containers:
          - name: nginx
            image: nginx:1.27.2
""" % ns


def api_key():
    return "bst_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def write_secret_file(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class TenantServer:
    """A server on tenants.yaml with API keys and a certificate mapping. Keys: name ->
    (key, principal as the model sees it)."""

    ENTRIES = {
        # id: (identity, tenant, groups, carried permissions)
        "acme-root": ("acme-root", "acme", ["superusers"], []),
        "acme-carrier": ("acme-carrier", "acme", [], ["k8s:*"]),
        "acme-pods": ("acme-pods", "acme", ["pod-people"], ["k8s:pods:*"]),
        "globex-root": ("globex-root", "globex", ["superusers"], ["k8s:*"]),
        "globex-member": ("globex-member", None, ["globex-ops", "superusers"], ["k8s:*"]),
        "acme-and-globex": ("acme-and-globex", "acme", ["globex-ops", "superusers"], ["k8s:*"]),
        "initech-root": ("initech-root", "initech", ["superusers"], ["k8s:*"]),
        "untenanted": ("untenanted", None, [], []),
        # Bound by its key id (apikey: keyed), no tenant: pods in any one namespace.
        "keyed": ("keyed-ci", None, [], []),
    }

    def __init__(self):
        self.keys = {}
        lines = ["keys:"]
        for kid, (ident, tenant, groups, perms) in self.ENTRIES.items():
            key = api_key()
            self.keys[kid] = key
            lines += ["  - id: %s" % kid,
                      '    sha256: "%s"' % hashlib.sha256(key.encode()).hexdigest(),
                      "    identity: %s" % ident,
                      "    groups: [%s]" % ", ".join(groups)]
            if tenant:
                lines.append("    tenant: %s" % tenant)
            if perms:
                lines.append("    permissions: [%s]" % ", ".join('"%s"' % p for p in perms))
        self.api_keys_text = "\n".join(lines) + "\n"

    def principal(self, kid, cert="viewer"):
        ident, tenant, groups, perms = self.ENTRIES[kid]
        return {"name": ident, "tenant": tenant, "groups": groups, "carries": perms,
                "apikey": kid, "cert": SPIFFE + cert}

    def server(self):
        """The harness.Server (not started: use it as a context manager)."""
        d = tempfile.mkdtemp(prefix="bastion-rbac-tenants-")
        self.seed = os.path.join(d, "seed.yaml")
        with open(self.seed, "w") as f:
            f.write(TENANT_SEED % "".join(seed_namespace(ns) for ns in TENANT_NAMESPACES))
        keys = os.path.join(d, "api-keys.yaml")
        write_secret_file(keys, self.api_keys_text)
        certmap = os.path.join(d, "certificate-identities.yaml")
        with open(certmap, "w") as f:
            f.write("identities:\n"
                    "  - certificate: %soperator\n"
                    "    name: acme-operator\n"
                    "    groups: [operators]\n"
                    "    tenant: acme\n" % SPIFFE)
        self.srv = harness.Server(policy=os.path.join(POLICIES, "tenants.yaml"), extra=[
            "cluster:", "  seed: %s" % self.seed,
            "auth:", "  api_keys: %s" % keys, "  certificate_identities: %s" % certmap])
        return self.srv


def test_tenant_isolation_whatever_the_roles():
    ts = TenantServer()
    with ts.server() as srv:
        setup = harness.grpc_channel(srv.port, "admin")
        m = Matrix(srv, TENANTS, setup)
        viewer = harness.grpc_channel(srv.port, "viewer")
        operator = harness.grpc_channel(srv.port, "operator")
        # API keys (sent over the viewer's connection, which no binding names), and a
        # certificate mapped to tenant acme whose `cert:` binding grants k8s:*.
        principals = [(kid, ts.principal(kid), viewer, (("authorization", "Bearer " + key),))
                      for kid, key in ts.keys.items()]
        principals.append(("acme-operator(cert)",
                           {"name": "acme-operator", "cert": SPIFFE + "operator",
                            "groups": ["operators"], "tenant": "acme"}, operator, None))
        run_cells(m, principals, TENANT_NAMESPACES)
        m.report()
        m.check_audit()
        # The model agrees with the point of the exercise: nobody confined to a tenant was
        # allowed anything outside it, and each was allowed something inside.
        patterns = {t[0]: t[1] for t in TENANTS.tenants}
        home = {"acme-root": "acme", "acme-carrier": "acme", "acme-pods": "acme",
                "acme-operator(cert)": "acme", "globex-root": "globex", "globex-member": "globex"}
        allowed = {}
        for label, want, rule, _, perm, ns in m.cells:
            allowed.setdefault(label.split(" ")[0], set())
            if want:
                allowed[label.split(" ")[0]].add(ns)
        for who, tenant in home.items():
            assert allowed[who], who
            outside = {ns for ns in allowed[who]
                       if ns is None or not any(ns_match(p, ns) for p in patterns[tenant])}
            assert not outside, (who, outside)
        assert not allowed["acme-and-globex"] and not allowed["initech-root"], allowed
        rules = {c[2] for c in m.cells}
        assert {"tenant:acme confines to acme-*",
                "tenant:globex confines to globex-*,shared-globex", "tenant:initech undefined",
                "deny:no-vault-secrets", "carried:k8s:* via api_key",
                "role:pods-anywhere via binding:keyed-pods"} <= rules, rules
        timings["tenant matrix"] = "%d cells" % len(m.cells)
        # The namespace decided on is the namespace acted on: a manifest naming another
        # tenant's namespace is refused, and nothing appears there.
        md = (("authorization", "Bearer " + ts.keys["acme-root"]),)
        for manifest in ("apiVersion: v1\nkind: ConfigMap\n"
                         "metadata: {name: smuggled, namespace: globex-web}\n",
                         '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": '
                         '"smuggled", "namespace": "globex-web", "namespace": "acme-web"}}'):
            o = call_tool(viewer, "create_resource", {"namespace": "acme-web",
                                                      "manifest": manifest}, md)
            assert o.code == grpc.StatusCode.INVALID_ARGUMENT, (manifest, o)
        created = must(setup, "create_resource", namespace="globex-web",
                       manifest=configmap("smuggled")).create_resource
        assert created.created and created.namespace == "globex-web", created
        for ch in (setup, viewer, operator):
            ch.close()


def test_a_token_does_not_lift_the_certificates_tenant():
    """The operator certificate is mapped to tenant acme, and its `cert:` binding grants k8s:*.
    Presenting any valid API key without a tenant over that connection must not turn the
    certificate's rights into rights outside acme (the token's principal has no tenant, but the
    `cert:` binding still matches the connection's certificate)."""
    ts = TenantServer()
    with ts.server() as srv:
        op = harness.grpc_channel(srv.port, "operator")
        # Control: the certificate alone is confined, and the key alone may do nothing.
        r = can_i(op, "k8s:pods:list", "globex-web")
        assert not r.allowed and r.rule == "tenant:acme confines to acme-*", r
        md = (("authorization", "Bearer " + ts.keys["untenanted"]),)
        with harness.grpc_channel(srv.port, "viewer") as viewer:
            r = can_i(viewer, "k8s:pods:list", "globex-web", md)
            assert not r.allowed and r.rule == "no rule matched", r
        leaks = []
        for tool, ns in every_cell(["globex-web", "default", "kube-system"]):
            ci = can_i(op, TOOLS[tool][0], ns, md)
            if ci.allowed:
                leaks.append("%s %s: %s" % (tool, ns or "<all>", ci.rule))
        o = call_tool(op, "list_pods", {"namespace": "globex-web"}, md)
        assert not leaks and o.code == PD, (
            "untenanted key + acme-confined certificate acts outside acme (%d cells), e.g. %s; "
            "list_pods globex-web: %r" % (len(leaks), leaks[:3], o))
        op.close()


# -- reload --------------------------------------------------------------------------------------


def reload_count(srv, event):
    return sum(1 for line in srv.logs().splitlines()
               if '"event":"%s"' % event in line and '"component":"rbac"' in line)


def test_reload_under_a_stream_of_calls():
    d = tempfile.mkdtemp(prefix="bastion-rbac-reload-")
    live = os.path.join(d, "policy.yaml")

    def install(name):
        tmp = live + ".tmp"
        shutil.copyfile(os.path.join(POLICIES, name), tmp)
        os.replace(tmp, live)

    install("reload-a.yaml")
    # Under A the viewer lists pods in default only, under B in staging only; the admin lists
    # everywhere under both, and nobody else may do anything under either.
    expect = {"reload-a.yaml": {"default": True, "staging": False},
              "reload-b.yaml": {"default": False, "staging": True}}
    stop = threading.Event()
    counts = {"calls": 0}
    errors = []
    lock = threading.Lock()

    def stream(port, seed):
        admin = harness.grpc_channel(port, "admin")
        viewer = harness.grpc_channel(port, "viewer")
        i = seed
        n = 0
        try:
            while not stop.is_set():
                i += 1
                ns = ("default", "staging")[i % 2]
                o = call_tool(viewer, "list_pods", {"namespace": ns})
                if o.code not in (grpc.StatusCode.OK, PD) or (
                        o.code == grpc.StatusCode.OK and o.response.is_error):
                    errors.append("viewer list_pods %s: %r" % (ns, o))
                o = call_tool(admin, "list_pods", {"namespace": ns})
                if o.code != grpc.StatusCode.OK or o.response.is_error:
                    errors.append("admin list_pods %s: %r" % (ns, o))
                o = call_tool(viewer, "delete_pod", {"namespace": ns, "name": "web-x"})
                if o.code != PD:
                    errors.append("viewer delete_pod %s: %r" % (ns, o))
                r = can_i(admin, "k8s:pods:delete", "production")
                if not r.allowed:
                    errors.append("admin CanI delete production: %s %s" % (r.rule, r.reason))
                n += 4
        except Exception as e:  # noqa: BLE001 - a transport failure is a failure too
            errors.append("stream: %r" % e)
        finally:
            admin.close()
            viewer.close()
            with lock:
                counts["calls"] += n

    with harness.Server(policy=live, workers=2) as srv:
        threads = [threading.Thread(target=stream, args=(srv.port, k)) for k in range(4)]
        for t in threads:
            t.start()
        viewer = harness.grpc_channel(srv.port, "viewer")
        current = "reload-a.yaml"
        sequence = ["reload-b.yaml", "reload-broken.yaml", "reload-a.yaml", "reload-broken.yaml",
                    "reload-b.yaml", "reload-a.yaml"] * 3
        reload_ms = []
        try:
            time.sleep(0.3)
            for name in sequence:
                ok0, bad0 = reload_count(srv, "reload_ok"), reload_count(srv, "reload_refused")
                install(name)
                t0 = time.monotonic()
                srv.proc.send_signal(signal.SIGHUP)
                deadline = t0 + 10
                while time.monotonic() < deadline:
                    ok1, bad1 = (reload_count(srv, "reload_ok"),
                                 reload_count(srv, "reload_refused"))
                    if ok1 > ok0 or bad1 > bad0:
                        break
                    time.sleep(0.005)
                reload_ms.append((time.monotonic() - t0) * 1000)
                if name == "reload-broken.yaml":
                    assert bad1 == bad0 + 1 and ok1 == ok0, (name, ok1, bad1)
                    last = [line for line in srv.logs().splitlines()
                            if '"reload_refused"' in line and '"rbac"' in line][-1]
                    assert "%s:4:19:" % live in last and "k8s:pods:lst" in last, last
                else:
                    assert ok1 == ok0 + 1 and bad1 == bad0, (name, ok1, bad1)
                    current = name
                # The reload is logged after the swap: the very next decision is the new one.
                for ns, want in expect[current].items():
                    r = can_i(viewer, "k8s:pods:list", ns)
                    assert r.allowed == want, (name, current, ns, r)
                    o = call_tool(viewer, "list_pods", {"namespace": ns})
                    assert (o.code != PD) == want, (name, current, ns, o)
                time.sleep(0.1)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
            viewer.close()
        assert not errors, "%d failures under reload, e.g.:\n%s" % (len(errors),
                                                                     "\n".join(errors[:10]))
        assert counts["calls"] > 500, counts
        assert srv.alive()
        # Each SIGHUP left an admin record saying whether something was refused.
        reloads = [r.get("detail", "") for r in audit_records(srv) if r.get("action") == "reload"]
        assert len(reloads) == len(sequence), reloads
        refused = [d for d in reloads if d.startswith("SIGHUP: 1 component(s) refused")]
        assert len(refused) == sequence.count("reload-broken.yaml"), reloads
        timings["reload"] = "%d reloads (%d refused) under %d calls from 4 threads, 0 failures; " \
            "SIGHUP to logged reload: max %.0f ms" % (
                len(sequence), sequence.count("reload-broken.yaml"), counts["calls"],
                max(reload_ms))


# -- hostile policies ------------------------------------------------------------------------------

# file -> (line, column, a word of the message). Positions are 1-based and point at the
# offending token.
HOSTILE = {
    "alias.yaml": (4, 18, "anchors"),
    "alias-cycle.yaml": (2, 8, "anchors"),
    "bad-subject.yaml": (8, 9, "subject"),
    "duplicate-key.yaml": (5, 5, "duplicate key 'permissions'"),
    "duplicate-role.yaml": (5, 11, "defined twice"),
    "empty-list.yaml": (5, 17, "empty list"),
    "inner-glob.yaml": (5, 18, "fe*ture"),
    "inner-wildcard.yaml": (4, 19, "k8s:po*"),
    "path-namespace.yaml": (5, 18, "feature-x/../prod"),
    "tag.yaml": (3, 11, "tags"),
    "tenant-overlap.yaml": (6, 18, "overlap"),
    "tenant-star.yaml": (4, 18, "every namespace"),
    "two-documents.yaml": (5, 1, "second document"),
    "unknown-key.yaml": (5, 5, "unknown key 'namespace'"),
    "unknown-permission.yaml": (4, 34, "k8s:pods:lst"),
    "unknown-role.yaml": (8, 13, "no role named 'admin'"),
    "unmatched-wildcard.yaml": (4, 19, "k8s:nodes:*"),
    "upper-case-namespace.yaml": (5, 18, "Production"),
    "wrong-type.yaml": (4, 18, "must be a list"),
    "yaml11-bool.yaml": (3, 11, "'on'"),
}


def generated_hostile(d):
    """Bombs too big (or too binary) to keep in the tree: path -> (line, column, word)."""
    out = {}

    def put(name, data, where):
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(data)
        out[p] = where
    depth = 100000
    put("depth-flow.yaml", b"roles: " + b"[" * depth + b"]" * depth + b"\n", (1, 39, "deeper"))
    put("depth-block.yaml", b"".join(b"  " * i + b"a:\n" for i in range(200)) + b"  " * 200 +
        b"b: 1\n", (33, 65, "deeper"))
    lol = b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 10):
        p, c = chr(96 + i).encode(), chr(97 + i).encode()
        lol += c + b": &" + c + b" [" + b", ".join([b"*" + p] * 10) + b"]\n"
    put("billion-laughs.yaml", lol, (1, 4, "anchors"))
    put("nul.yaml", b"roles:\n  - name: vie\x00wer\n    permissions: [k8s:pods:list]\n",
        (2, 14, "NUL"))
    put("bad-utf8.yaml", b"roles:\n  - name: vi\xc3\x28ewer\n    permissions: [k8s:pods:list]\n",
        (2, 13, "UTF-8"))
    big = b"roles:\n" + b"".join(b"  - name: r%07d\n    permissions: [k8s:pods:list]\n" % i
                                 for i in range(25000))
    assert len(big) > 1 << 20
    put("over-1mib.yaml", big, (None, None, "larger than 1048576 bytes"))
    return out


def check_config(policy):
    srv = harness.Server(policy=policy)
    t0 = time.monotonic()
    r = subprocess.run([harness.BASTIOND, "--check-config", "--config", srv.config],
                       capture_output=True, text=True, timeout=30)
    secs = time.monotonic() - t0
    shutil.rmtree(srv.dir, ignore_errors=True)
    return r, secs


def test_hostile_policies_refused_at_startup_with_positions_in_milliseconds():
    good, base = check_config(EXAMPLE_POLICY)
    assert good.returncode == 0, good.stderr
    cases = {os.path.join(POLICIES, "hostile", f): v for f, v in HOSTILE.items()}
    gen_dir = tempfile.mkdtemp(prefix="bastion-rbac-hostile-")
    cases.update(generated_hostile(gen_dir))
    listed = {f for f in os.listdir(os.path.join(POLICIES, "hostile")) if f.endswith(".yaml")}
    assert listed == set(HOSTILE), listed ^ set(HOSTILE)
    worst = (0, "")
    for path, (line, col, word) in sorted(cases.items()):
        r, secs = check_config(path)
        assert r.returncode == 1, (path, r.returncode, r.stdout, r.stderr)
        assert "is valid" not in r.stdout
        msg = [x for x in r.stderr.splitlines() if x.startswith("bastiond: ")]
        assert msg, (path, r.stderr)
        if line is not None:
            assert msg[0].startswith("bastiond: %s:%d:%d: " % (path, line, col)), (path, msg)
            assert word in msg[0], (path, word, msg)
        else:
            # Too big to read: the whole file is the position.
            assert msg[0].startswith("bastiond: %s: " % path) and word in msg[0], (path, msg)
        # The whole process, start to refusal, costs what a valid config costs: nothing grows
        # with the bomb.
        assert secs < base + 1.0, (path, secs, base)
        worst = max(worst, (secs, os.path.basename(path)))
    # A real start is refused the same way (not only --check-config).
    srv = harness.Server(policy=os.path.join(POLICIES, "hostile", "duplicate-key.yaml"))
    try:
        srv.start()
        raise AssertionError("bastiond started with a hostile policy")
    except RuntimeError as e:
        assert "duplicate-key.yaml:5:5:" in str(e), e
    finally:
        srv.stop()
        shutil.rmtree(srv.dir, ignore_errors=True)
    shutil.rmtree(gen_dir, ignore_errors=True)
    timings["hostile"] = "%d hostile policies refused; valid --check-config %.0f ms, slowest " \
        "refusal %.0f ms (%s)" % (len(cases), base * 1000, worst[0] * 1000, worst[1])


def test_denial_audit_record_carries_the_rule():
    """Denials read back with bastion-audit cat: the request record and the authorization event
    both carry the decision, the deciding rule, the permission and the namespace."""
    with harness.Server() as srv, harness.grpc_channel(srv.port, "viewer") as ch:
        o = call_tool(ch, "delete_pod", {"namespace": "default", "name": "web-1"})
        assert o.code == PD and o.details == denial_message("k8s:pods:delete", "default"), o
        with harness.grpc_channel(srv.port, "admin") as admin:
            o2 = call_tool(admin, "create_secret", {"namespace": "kube-system", "name": "x",
                                                    "data": [{"key": "k", "value": CANARY}]})
        assert o2.code == PD, o2
        recs = audit_records(srv)

        def records(rid):
            found = {r.get("event_type"): r for r in recs if r.get("request_id") == rid}
            assert sorted(found) == ["AUDIT_EVENT_AUTHORIZATION", "AUDIT_EVENT_REQUEST"], found
            assert sum(1 for r in recs if r.get("request_id") == rid) == 2, rid
            return found["AUDIT_EVENT_REQUEST"], found["AUDIT_EVENT_AUTHORIZATION"]
        for rec in records(o.request_id):
            assert rec["decision"] == "AUDIT_DECISION_DENY", rec
            assert rec["decision_rule"] == "no rule matched", rec
            assert rec["permission"] == "k8s:pods:delete" and rec["namespace"] == "default", rec
            assert rec["tool"] == "delete_pod" and rec["result"] == "denied", rec
            assert rec["principal"]["certificate_identity"] == SPIFFE + "viewer", rec
        req, event = records(o.request_id)
        assert req["grpc_status"] == 7 and req["grpc_message"] == o.details, req
        assert event["detail"] == ("No role bound to the principal grants k8s:pods:delete in "
                                   "namespace default."), event
        for rec in records(o2.request_id):
            assert rec["decision_rule"] == "deny:protect-kube-system", rec
            assert rec["principal"]["name"] == SPIFFE + "admin", rec
            assert CANARY not in json.dumps(rec), rec  # secret values never reach the audit


def main():
    global msgs
    msgs = harness.Messages()
    start = time.monotonic()
    try:
        harness.run_tests([
            test_list_tools_matches_the_matrix,
            test_example_policy_matrix_roles_x_tools_x_namespaces,
            test_example_policy_matrix_over_resources,
            test_deny_beats_allow_matrix,
            test_glob_edge_cases_through_the_server,
            test_tenant_isolation_whatever_the_roles,
            test_a_token_does_not_lift_the_certificates_tenant,
            test_reload_under_a_stream_of_calls,
            test_hostile_policies_refused_at_startup_with_positions_in_milliseconds,
            test_denial_audit_record_carries_the_rule,
        ])
    finally:
        for k, v in timings.items():
            print("  %s: %s" % (k, v))
        print("total %.1f s" % (time.monotonic() - start))


if __name__ == "__main__":
    main()
