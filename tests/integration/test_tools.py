"""Every tool of the catalogue through a stock gRPC client (python3-grpcio) against the real
bastiond and its embedded simulated cluster: typed results and kubectl-like text, tool-level
errors, validation refusals (names, replicas, selectors, manifests under the Pod Security
Standards "restricted" profile), write-only secrets, resources with cursor pagination, and
concurrent scale/delete calls that leave every deployment with as many pods as replicas.

Mutating tests create their own objects (deployments from manifests, secrets), so no test
depends on another's state. Run with Debian's /usr/bin/python3."""

import concurrent.futures
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

import harness  # noqa: E402

CANARY = "CANARY-secret-7f3a91"
srv = None
msgs = None

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


def channel(name="admin", server=None):
    return harness.grpc_channel((server or srv).port, name)


def rpc(ch, method, request, response_type):
    return harness.unary(ch, msgs, "/bastion.v1.Mcp/" + method, request, response_type)


def tool(ch, tool_, **args):
    """Calls a tool with arguments given as proto-JSON (proto field names)."""
    req = msgs["bastion.v1.CallToolRequest"]()
    json_format.ParseDict({"name": tool_, tool_: args}, req)
    return rpc(ch, "CallTool", req, "bastion.v1.CallToolResponse")


def ok(ch, tool_, **args):
    r = tool(ch, tool_, **args)
    assert not r.is_error, "%s(%r) failed: %s" % (tool_, args, r.text)
    assert r.WhichOneof("result") == tool_, r
    return r


def refused(code, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        assert e.code() == code, "expected %s, got %s: %s" % (code, e.code(), e.details())
        return e.details()
    raise AssertionError("expected %s, the call succeeded" % code)


def invalid(ch, tool_, want, **args):
    details = refused(grpc.StatusCode.INVALID_ARGUMENT, tool, ch, tool_, **args)
    assert want in details, "%r not in %r" % (want, details)
    assert CANARY not in details, details
    return details


def deployment_manifest(name, replicas, extra_container=""):
    return """apiVersion: apps/v1
kind: Deployment
metadata:
  name: %(n)s
  labels: {app: %(n)s}
spec:
  replicas: %(r)d
  selector:
    matchLabels: {app: %(n)s}
  template:
    metadata:
      labels: {app: %(n)s, owner: test-tools}
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: web
          image: nginx:1.27.2
          ports: [{containerPort: 8080, name: http}]
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
%(x)s""" % {"n": name, "r": replicas, "x": extra_container}


def make_deployment(ch, ns, name, replicas):
    r = ok(ch, "create_resource", namespace=ns, manifest=deployment_manifest(name, replicas))
    assert r.create_resource.created and r.create_resource.kind == "Deployment", r
    return r


def pods_of(ch, ns, app):
    return list(ok(ch, "list_pods", namespace=ns, label_selector="app=%s" % app).list_pods.pods)


def deployment_of(ch, ns, name):
    for d in ok(ch, "list_deployments", namespace=ns).list_deployments.deployments:
        if d.name == name:
            return d
    raise AssertionError("no deployment %s/%s" % (ns, name))


# ---- ListTools ----------------------------------------------------------------------------------


def test_list_tools_lists_every_tool_with_schemas_permissions_and_hints():
    with channel() as ch:
        r = rpc(ch, "ListTools", msgs["bastion.v1.ListToolsRequest"](),
                "bastion.v1.ListToolsResponse")
        tools = {t.name: t for t in r.tools}
        assert set(tools) == set(TOOLS), sorted(tools)
        for name, t in tools.items():
            assert t.permission == TOOLS[name], (name, t.permission)
            assert t.title and len(t.description) > 40, t
            for text in (t.input_schema_json, t.output_schema_json):
                s = json.loads(text)
                assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema", s
                assert s["type"] == "object" and s["additionalProperties"] is False, s
            assert t.annotations.HasField("read_only_hint"), t
            assert not (t.annotations.read_only_hint and t.annotations.destructive_hint), t
        assert tools["list_pods"].annotations.read_only_hint
        assert tools["delete_pod"].annotations.destructive_hint
        scale = json.loads(tools["scale_deployment"].input_schema_json)
        assert scale["required"] == ["namespace", "name", "replicas"], scale
        assert scale["properties"]["replicas"]["minimum"] == 0
        assert scale["properties"]["replicas"]["maximum"] == 100
        secret = json.loads(tools["create_secret"].input_schema_json)
        value = secret["properties"]["data"]["items"]["properties"]["value"]
        assert value.get("writeOnly") is True, value


# ---- read-only tools ----------------------------------------------------------------------------


def test_list_namespaces_has_the_seeded_namespaces():
    with channel() as ch:
        r = ok(ch, "list_namespaces")
        names = [n.name for n in r.list_namespaces.namespaces]
        for ns in ("default", "development", "staging", "production", "feature-login",
                   "kube-system"):
            assert ns in names, names
        assert all(n.phase == "Active" for n in r.list_namespaces.namespaces)
        assert r.text.splitlines()[0].split() == ["NAME", "STATUS", "AGE"], r.text
        sel = ok(ch, "list_namespaces", label_selector="env in (staging,production)")
        assert sorted(n.name for n in sel.list_namespaces.namespaces) == ["production", "staging"]


def test_list_pods_in_one_namespace_all_namespaces_and_by_selector():
    with channel() as ch:
        r = ok(ch, "list_pods", namespace="production")
        assert r.list_pods.pods and all(p.namespace == "production" for p in r.list_pods.pods)
        header = r.text.splitlines()[0].split()
        assert header[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], r.text
        every = ok(ch, "list_pods", all_namespaces=True)
        assert {p.namespace for p in every.list_pods.pods} >= {"default", "kube-system",
                                                               "feature-login"}
        assert every.text.splitlines()[0].split()[0] == "NAMESPACE", every.text
        web = ok(ch, "list_pods", namespace="production", label_selector="app=web,tier!=db")
        assert web.list_pods.pods and all(p.name.startswith("web-") for p in web.list_pods.pods)
        none = ok(ch, "list_pods", namespace="production", label_selector="app=nothing")
        assert not none.list_pods.pods
        assert none.text.strip() == "No resources found in production namespace.", none.text
        login = {p.name.split("-")[1]: p for p in ok(ch, "list_pods", namespace="feature-login")
                 .list_pods.pods}
        assert login["api"].status == "CrashLoopBackOff" and login["api"].restarts > 0, login
        assert login["worker"].status in ("ImagePullBackOff", "ErrImagePull"), login


def test_get_pod_describes_containers_owner_and_events():
    with channel() as ch:
        name = [p.name for p in ok(ch, "list_pods", namespace="feature-login",
                                   label_selector="app=login-api").list_pods.pods][0]
        r = ok(ch, "get_pod", namespace="feature-login", name=name)
        p = r.get_pod.pod
        assert p.name == name and p.owner.kind == "ReplicaSet", p
        assert p.containers[0].reason == "CrashLoopBackOff", p.containers
        assert any(e.reason == "BackOff" and e.type == "Warning" for e in r.get_pod.events), \
            r.get_pod.events
        assert "Controlled By:" in r.text and "Events:" in r.text, r.text


def test_get_pod_logs_honours_tail_since_timestamps_container_and_previous():
    with channel() as ch:
        pods = ok(ch, "list_pods", namespace="production", label_selector="app=payments")
        pod = [p for p in pods.list_pods.pods if p.restarts > 0][0].name
        tail = ok(ch, "get_pod_logs", namespace="production", name=pod, container="payments",
                  tail_lines=7)
        assert tail.get_pod_logs.lines == 7 and len(tail.get_pod_logs.logs.splitlines()) == 7
        again = ok(ch, "get_pod_logs", namespace="production", name=pod, container="payments",
                   tail_lines=7)
        assert again.get_pod_logs.logs == tail.get_pod_logs.logs  # deterministic
        stamped = ok(ch, "get_pod_logs", namespace="production", name=pod, container="payments",
                     since_seconds=120, timestamps=True)
        now = time.time()
        for line in stamped.get_pod_logs.logs.splitlines():
            t = time.mktime(time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
            assert now - 125 <= t <= now + 5, line
        prev = ok(ch, "get_pod_logs", namespace="production", name=pod, container="payments",
                  previous=True, tail_lines=3)
        assert prev.get_pod_logs.previous and prev.get_pod_logs.logs, prev
        side = ok(ch, "get_pod_logs", namespace="production", name=pod, container="log-shipper",
                  tail_lines=2)
        assert side.get_pod_logs.container == "log-shipper"
        capped = ok(ch, "get_pod_logs", namespace="production", name=pod, container="payments",
                    limit_bytes=64)
        assert len(capped.get_pod_logs.logs.encode()) == 64 and capped.get_pod_logs.truncated
        # A pod with two containers needs a container name: the cluster says which.
        r = tool(ch, "get_pod_logs", namespace="production", name=pod)
        assert r.is_error and "choose one of: [payments log-shipper]" in r.text, r.text
        fresh = [p for p in pods.list_pods.pods if p.restarts == 0][0].name
        r = tool(ch, "get_pod_logs", namespace="production", name=fresh, container="payments",
                 previous=True)
        assert r.is_error and "previous terminated container" in r.text, r.text


def test_list_services_events_and_deployments():
    with channel() as ch:
        s = ok(ch, "list_services", namespace="production")
        web = [x for x in s.list_services.services if x.name == "web"][0]
        assert web.type == "LoadBalancer" and web.external_ip and web.ports[0].node_port, web
        assert "PORT(S)" in s.text and "80:31380/TCP" in s.text, s.text
        assert any(x.name == "kubernetes" and x.cluster_ip == "10.96.0.1"
                   for x in ok(ch, "list_services", namespace="default").list_services.services)
        d = ok(ch, "list_deployments", all_namespaces=True)
        assert any(x.namespace == "kube-system" and x.name == "coredns"
                   for x in d.list_deployments.deployments)
        warn = ok(ch, "list_events", namespace="feature-login", type="Warning")
        assert warn.list_events.events and all(e.type == "Warning"
                                               for e in warn.list_events.events)
        assert warn.text.splitlines()[0].split()[:3] == ["LAST", "SEEN", "TYPE"], warn.text


# ---- mutations ----------------------------------------------------------------------------------


def test_scale_deployment_up_and_down_and_watch_pods_become_ready():
    with channel() as ch:
        make_deployment(ch, "staging", "scale-me", 1)
        r = ok(ch, "scale_deployment", namespace="staging", name="scale-me", replicas=4)
        assert r.scale_deployment.previous_replicas == 1
        assert r.scale_deployment.deployment.replicas == 4
        assert "scaled from 1 to 4" in r.text, r.text
        pods = pods_of(ch, "staging", "scale-me")
        assert len(pods) == 4 and len({p.name for p in pods}) == 4
        assert any(p.status == "ContainerCreating" for p in pods), [p.status for p in pods]
        time.sleep(2.5)
        assert all(p.status == "Running" for p in pods_of(ch, "staging", "scale-me"))
        assert deployment_of(ch, "staging", "scale-me").ready_replicas == 4
        ok(ch, "scale_deployment", namespace="staging", name="scale-me", replicas=0)
        assert pods_of(ch, "staging", "scale-me") == []
        ev = ok(ch, "list_events", namespace="staging", object_kind="Deployment",
                object_name="scale-me")
        msgs_ = [e.message for e in ev.list_events.events]
        assert any("to 4 from 1" in m for m in msgs_) and any("to 0 from 4" in m for m in msgs_)


def test_delete_and_restart_pod_get_replacements_with_new_names():
    with channel() as ch:
        make_deployment(ch, "development", "victim", 2)
        before = {p.name for p in pods_of(ch, "development", "victim")}
        gone = sorted(before)[0]
        r = ok(ch, "delete_pod", namespace="development", name=gone)
        assert r.delete_pod.pod.name == gone and r.delete_pod.pod.status == "Terminating"
        assert r.text.strip() == 'pod "%s" deleted' % gone, r.text
        after = {p.name for p in pods_of(ch, "development", "victim")}
        assert len(after) == 2 and gone not in after
        r = ok(ch, "restart_pod", namespace="development", name=sorted(after)[0])
        assert r.restart_pod.pod.name not in after and r.restart_pod.pod.name.startswith(
            "victim-"), r
        r = tool(ch, "delete_pod", namespace="development", name=gone)
        assert r.is_error and r.text == \
            'Error from server (NotFound): pods "%s" not found' % gone, r.text


def test_restart_deployment_rolls_every_pod():
    with channel() as ch:
        make_deployment(ch, "development", "rolling", 3)
        before = {p.name for p in pods_of(ch, "development", "rolling")}
        time.sleep(1.1)  # restartedAt has a resolution of one second, as kubectl's
        r = ok(ch, "restart_deployment", namespace="development", name="rolling")
        d = r.restart_deployment.deployment
        assert d.restarted_at == r.restart_deployment.restarted_at, d
        after = pods_of(ch, "development", "rolling")
        assert len(after) == 3 and not before & {p.name for p in after}, (before, after)
        assert all(p.owner.name == d.current_replica_set for p in after)


def test_secrets_are_write_only_and_never_echoed():
    with channel() as ch:
        r = ok(ch, "create_secret", namespace="staging", name="tools-test",
               data=[{"key": "password", "value": CANARY}, {"key": "user", "value": "svc"}],
               labels=[{"key": "team", "value": "qa"}])
        assert list(r.create_secret.secret.keys) == ["password", "user"], r
        assert CANARY not in str(r)
        listed = ok(ch, "list_secrets", namespace="staging")
        mine = [s for s in listed.list_secrets.secrets if s.name == "tools-test"][0]
        assert list(mine.keys) == ["password", "user"] and mine.type == "Opaque"
        assert CANARY not in str(listed) and "write-only" in listed.text
        res = rpc(ch, "ReadResource",
                  msgs["bastion.v1.ReadResourceRequest"](uri="k8s://staging/secret/tools-test"),
                  "bastion.v1.ReadResourceResponse")
        obj = json.loads(res.contents[0].text)
        assert obj["kind"] == "Secret" and "data" not in obj and CANARY not in res.contents[0].text
        dup = tool(ch, "create_secret", namespace="staging", name="tools-test",
                   data=[{"key": "password", "value": CANARY}])
        assert dup.is_error and "already exists" in dup.text and CANARY not in dup.text
        invalid(ch, "create_secret", "create_secret.data[0].key", namespace="staging",
                name="bad", data=[{"key": "no/slash", "value": CANARY}])
        tls = tool(ch, "create_secret", namespace="staging", name="tls", type="kubernetes.io/tls",
                   data=[{"key": "tls.crt", "value": CANARY}])
        assert tls.is_error and "data[tls.key]: Required value" in tls.text, tls.text
        ok(ch, "delete_secret", namespace="staging", name="tools-test")
        gone = tool(ch, "delete_secret", namespace="staging", name="tools-test")
        assert gone.is_error and "not found" in gone.text
    assert CANARY not in srv.logs(), "the secret value reached the server log"


def test_create_resource_all_kinds_and_dry_run():
    with channel() as ch:
        dry = ok(ch, "create_resource", namespace="default", dry_run=True,
                 manifest=deployment_manifest("dry", 2))
        assert not dry.create_resource.created and "dry run" in dry.text
        assert pods_of(ch, "default", "dry") == []
        ok(ch, "create_resource", namespace="default", manifest=json.dumps({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "dry"},
            "spec": {"selector": {"app": "dry"}, "ports": [{"port": 80, "targetPort": "http"}]}}))
        svc = [s for s in ok(ch, "list_services", namespace="default").list_services.services
               if s.name == "dry"][0]
        assert svc.cluster_ip.startswith("10.") and svc.ports[0].target_port == "http"
        ok(ch, "create_resource", namespace="default",
           manifest="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\ndata: {a: b}\n")
        pod = ok(ch, "create_resource", namespace="default", manifest=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lonely"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {
                "allowPrivilegeEscalation": False, "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]}}))
        assert pod.text.strip() == "pod/lonely created", pod.text
        again = tool(ch, "create_resource", namespace="default",
                     manifest="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\n")
        assert again.is_error and "AlreadyExists" in again.text, again.text


def test_create_resource_refusals_name_the_field():
    base = deployment_manifest("bad", 1)
    cases = [
        (base.replace("      containers:", "      hostNetwork: true\n      containers:"),
         "spec.template.spec.hostNetwork: host namespaces are not allowed"),
        (base.replace("allowPrivilegeEscalation: false",
                      "allowPrivilegeEscalation: false\n            privileged: true"),
         "securityContext.privileged: privileged containers are not allowed"),
        (base.replace("drop: [ALL]", "drop: [ALL], add: [SYS_ADMIN]"),
         "capabilities.add[0]: adding capabilities is not allowed"),
        (base.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"),
         "securityContext.allowPrivilegeEscalation: must be set to false"),
        (base.replace("runAsNonRoot: true", "runAsNonRoot: true\n        runAsUser: 0"),
         "spec.template.spec.securityContext.runAsUser: running as root"),
        (base.replace("      containers:",
                      "      volumes: [{name: host, hostPath: {path: /etc}}]\n      containers:"),
         "spec.template.spec.volumes[0].hostPath: hostPath volumes are not allowed"),
        (base.replace("      containers:",
                      "      serviceAccountName: admin-sa\n      containers:"),
         "serviceAccountName: only the namespace's default service account"),
        (base.replace("  name: bad\n", "  name: bad\n  namespace: production\n"),
         "metadata.namespace: must equal the namespace argument"),
        (base.replace("replicas: 1", "replicas: 101"), "spec.replicas: must be between 0 and 100"),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", "kind: only Pod, Deployment"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\ndata: {token: %s}\nextra: 1\n"
         % CANARY, "extra: unknown field"),
    ]
    with channel() as ch:
        for manifest, want in cases:
            details = invalid(ch, "create_resource", want, namespace="default",
                              manifest=manifest)
            assert details.startswith("create_resource.manifest: "), details
        assert pods_of(ch, "default", "bad") == []


def test_validation_refusals_are_invalid_argument():
    with channel() as ch:
        invalid(ch, "list_pods", "list_pods.namespace: required (or set all_namespaces: true)")
        invalid(ch, "list_pods", "list_pods.namespace: required", namespace="")
        invalid(ch, "list_pods", "not both", namespace="default", all_namespaces=True)
        invalid(ch, "list_pods", "list_pods.namespace: must be a DNS-1123 label",
                namespace="feature-x/../prod")
        invalid(ch, "list_pods", "list_pods.namespace", namespace="Default")
        invalid(ch, "list_pods", "list_pods.label_selector: must be a label selector",
                namespace="default", label_selector="app in (a,b")
        invalid(ch, "get_pod", "get_pod.name: must be a DNS-1123 subdomain", namespace="default",
                name="Web_1")
        invalid(ch, "get_pod", "get_pod.name: required", namespace="default")
        invalid(ch, "scale_deployment", "scale_deployment.replicas: must be between 0 and 100",
                namespace="default", name="web", replicas=101)
        invalid(ch, "scale_deployment", "scale_deployment.replicas: must be between 0 and 100",
                namespace="default", name="web", replicas=-3)
        invalid(ch, "scale_deployment", "scale_deployment.replicas: required",
                namespace="default", name="web")
        invalid(ch, "get_pod_logs", "get_pod_logs.container: must be a DNS-1123 label",
                namespace="default", name="x", container="A B")
        invalid(ch, "list_events", "list_events.type: must be Normal or Warning",
                namespace="default", type="Error")
        # Tool-level errors, not call failures: the cluster's own answers.
        r = tool(ch, "list_pods", namespace="nosuchns")
        assert r.is_error and "nosuchns" in r.text and "not found" in r.text, r.text
        r = tool(ch, "scale_deployment", namespace="default", name="nope", replicas=1)
        assert r.is_error and 'deployments.apps "nope" not found' in r.text, r.text


def test_resources_paginate_and_read_as_kubernetes_json():
    with channel() as ch:
        uris, cursor, pages = [], "", 0
        while True:
            r = rpc(ch, "ListResources", msgs["bastion.v1.ListResourcesRequest"](cursor=cursor),
                    "bastion.v1.ListResourcesResponse")
            pages += 1
            uris += [x.uri for x in r.resources]
            assert all(x.mime_type == "application/json" for x in r.resources)
            if not r.next_cursor:
                break
            cursor = r.next_cursor
        assert pages >= 2, "expected several pages of 100 (%d resources)" % len(uris)
        assert len(uris) == len(set(uris)) and uris == sorted(uris)
        pod_uri = [u for u in uris if u.startswith("k8s://default/pod/web-")][0]
        assert "k8s://default/deployment/web" in uris and \
            "k8s://kube-system/service/kube-dns" in uris
        res = rpc(ch, "ReadResource", msgs["bastion.v1.ReadResourceRequest"](uri=pod_uri),
                  "bastion.v1.ReadResourceResponse")
        obj = json.loads(res.contents[0].text)
        assert obj["apiVersion"] == "v1" and obj["kind"] == "Pod", obj
        assert obj["metadata"]["name"] == pod_uri.rsplit("/", 1)[1]
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        assert obj["status"]["containerStatuses"][0]["name"] == "nginx"
        for bad in ("k8s://default/pod/nope", "k8s://default/widget/web", "k8s://Default/pod/x",
                    "file:///etc/passwd", "k8s://default/pod/../../x"):
            refused(grpc.StatusCode.NOT_FOUND, rpc, ch, "ReadResource",
                    msgs["bastion.v1.ReadResourceRequest"](uri=bad),
                    "bastion.v1.ReadResourceResponse")
        refused(grpc.StatusCode.INVALID_ARGUMENT, rpc, ch, "ListResources",
                msgs["bastion.v1.ListResourcesRequest"](cursor="not-a-cursor!"),
                "bastion.v1.ListResourcesResponse")


def test_authorization_sees_the_bound_namespace():
    # The viewer may read default and development only; all namespaces is cluster scope.
    with channel("viewer") as ch:
        ok(ch, "list_pods", namespace="default")
        refused(grpc.StatusCode.PERMISSION_DENIED, tool, ch, "list_pods", namespace="production")
        refused(grpc.StatusCode.PERMISSION_DENIED, tool, ch, "list_pods", all_namespaces=True)
        refused(grpc.StatusCode.PERMISSION_DENIED, tool, ch, "scale_deployment",
                namespace="default", name="web", replicas=3)


# ---- concurrency and configuration --------------------------------------------------------------


def test_concurrent_scale_and_delete_leave_replicas_equal_to_pods():
    with harness.Server(workers=4) as s, channel(server=s) as ch:
        names = ["hammer-a", "hammer-b"]
        for n in names:
            make_deployment(ch, "default", n, 3)

        def work(i):
            done = 0
            with channel(server=s) as c:
                for k in range(12):
                    n = names[(i + k) % 2]
                    if (i * 7 + k) % 3 == 0:
                        tool(c, "scale_deployment", namespace="default", name=n,
                             replicas=(i + k) % 9)
                    elif (i * 7 + k) % 3 == 1:
                        pods = pods_of(c, "default", n)
                        if pods:
                            tool(c, "delete_pod", namespace="default",
                                 name=pods[(i + k) % len(pods)].name)
                    else:
                        pods = pods_of(c, "default", n)
                        if pods:
                            tool(c, "restart_pod", namespace="default", name=pods[-1].name)
                    done += 1
            return done

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            calls = sum(pool.map(work, range(16)))
        assert calls == 16 * 12
        for n in names:
            d = deployment_of(ch, "default", n)
            pods = pods_of(ch, "default", n)
            assert len(pods) == d.replicas, (n, d.replicas, [p.name for p in pods])
            assert all(p.owner.name == d.current_replica_set for p in pods), n
            assert d.generation == d.observed_generation, d
        assert s.alive()


def test_cluster_section_sets_seed_and_replica_bounds():
    seed = os.path.join(harness.SRC, "configs", "cluster-seed.yaml")
    extra = ["cluster:", "  backend: sim", "  seed: %s" % seed, "  max_replicas: 5"]
    with harness.Server(extra=extra) as s, channel(server=s) as ch:
        invalid(ch, "scale_deployment", "must be between 0 and 5", namespace="default",
                name="web", replicas=6)
        ok(ch, "scale_deployment", namespace="default", name="web", replicas=5)
        r = rpc(ch, "ListTools", msgs["bastion.v1.ListToolsRequest"](),
                "bastion.v1.ListToolsResponse")
        t = [x for x in r.tools if x.name == "scale_deployment"][0]
        assert json.loads(t.input_schema_json)["properties"]["replicas"]["maximum"] == 5


def test_a_bad_seed_file_fails_check_config_with_its_position():
    d = harness.Server().dir
    bad = os.path.join(d, "seed.yaml")
    with open(bad, "w") as f:
        f.write("cluster:\n  nodes: [{name: n1}]\nnamespaces:\n  - name: default\n"
                "    deploymnets: []\n")
    s = harness.Server(extra=["cluster:", "  seed: %s" % bad])
    p = subprocess.run([harness.BASTIOND, "--config", s.config, "--check-config"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, p
    assert "seed.yaml:5:5: unknown key 'deploymnets'" in p.stderr, p.stderr


def run(tests):
    try:
        harness.run_tests(tests)
    except SystemExit as e:
        if e.code:
            sys.stderr.write("--- bastiond log ---\n%s\n" % srv.logs()[-6000:])
        return e.code
    return 0


def main():
    global srv, msgs
    msgs = harness.Messages()
    with harness.Server() as s:
        srv = s
        code = run([
            test_list_tools_lists_every_tool_with_schemas_permissions_and_hints,
            test_list_namespaces_has_the_seeded_namespaces,
            test_list_pods_in_one_namespace_all_namespaces_and_by_selector,
            test_get_pod_describes_containers_owner_and_events,
            test_get_pod_logs_honours_tail_since_timestamps_container_and_previous,
            test_list_services_events_and_deployments,
            test_scale_deployment_up_and_down_and_watch_pods_become_ready,
            test_delete_and_restart_pod_get_replacements_with_new_names,
            test_restart_deployment_rolls_every_pod,
            test_secrets_are_write_only_and_never_echoed,
            test_create_resource_all_kinds_and_dry_run,
            test_create_resource_refusals_name_the_field,
            test_validation_refusals_are_invalid_argument,
            test_resources_paginate_and_read_as_kubernetes_json,
            test_authorization_sees_the_bound_namespace,
            test_concurrent_scale_and_delete_leave_replicas_equal_to_pods,
            test_cluster_section_sets_seed_and_replica_bounds,
            test_a_bad_seed_file_fails_check_config_with_its_position,
        ])
    sys.exit(code)


if __name__ == "__main__":
    main()
