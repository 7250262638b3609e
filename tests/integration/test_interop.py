"""Interop: a stock gRPC client (python3-grpcio) calls the real bastiond over mutual TLS.

The client uses no generated code: its message classes come from a descriptor set that protoc
builds from proto/ at test time, so the test checks the wire contract of the .proto files, not
a copy of it. One server serves every test of this file; each test opens its own channel and
depends on no other test's state.

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf)."""

import concurrent.futures
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import harness  # noqa: E402

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")

srv = None
msgs = None


def channel(name="admin"):
    return harness.grpc_channel(srv.port, name)


def call(ch, method, request_type, response_type, timeout=10, with_call=False, **fields):
    """Calls a unary method with a request built from keyword fields."""
    service = "grpc.health.v1.Health" if request_type.startswith("grpc.health") else (
        "bastion.v1.Auth" if method in ("IssueToken", "WhoAmI", "CanI") else "bastion.v1.Mcp")
    req = msgs[request_type](**fields)
    return harness.unary(ch, msgs, "/%s/%s" % (service, method), req, response_type,
                         timeout=timeout, with_call=with_call)


def expect_code(code, fn, *args, **kw):
    """Runs fn and returns the RpcError it must raise with the given status code."""
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        assert e.code() == code, "expected %s, got %s: %s" % (code, e.code(), e.details())
        return e
    raise AssertionError("expected %s, the call succeeded" % code)


def list_pods_request(ns, name="list_pods"):
    return msgs["bastion.v1.CallToolRequest"](
        name=name, list_pods=msgs["bastion.v1.ListPodsArgs"](namespace=ns))


def call_tool(ch, req):
    return harness.unary(ch, msgs, "/bastion.v1.Mcp/CallTool", req, "bastion.v1.CallToolResponse")


def ping(ch, timeout=10):
    return call(ch, "Ping", "bastion.v1.PingRequest", "bastion.v1.PingResponse", timeout=timeout)


def who_am_i(ch, with_call=False):
    return call(ch, "WhoAmI", "bastion.v1.WhoAmIRequest", "bastion.v1.WhoAmIResponse",
                with_call=with_call)


def default_pods(ch):
    """The pods of namespace default, as list_pods returns them."""
    r = call_tool(ch, list_pods_request("default"))
    assert not r.is_error, r.text
    return r


# ---- Mcp --------------------------------------------------------------------------------------


def test_ping_succeeds():
    with channel() as ch:
        r = ping(ch)
        assert r == msgs["bastion.v1.PingResponse"](), r


def test_initialize_echoes_a_supported_protocol_version():
    with channel() as ch:
        r = call(ch, "Initialize", "bastion.v1.InitializeRequest", "bastion.v1.InitializeResponse",
                 protocol_version="2025-06-18",
                 client_info=msgs["bastion.v1.Implementation"](name="interop", version="1"))
        assert r.protocol_version == "2025-06-18", r.protocol_version
        assert r.server_info.name == "bastion", r.server_info
        assert r.server_info.version, "server_info.version is empty"
        assert r.capabilities.tools and r.capabilities.resources, r.capabilities


def test_initialize_offers_the_latest_version_for_an_unknown_one():
    with channel() as ch:
        r = call(ch, "Initialize", "bastion.v1.InitializeRequest", "bastion.v1.InitializeResponse",
                 protocol_version="1999-01-01")
        assert r.protocol_version == "2025-11-25", r.protocol_version
        assert r.server_info.name == "bastion", r.server_info


def test_list_tools_contains_list_pods_with_permission_and_read_only_hint():
    with channel() as ch:
        r = call(ch, "ListTools", "bastion.v1.ListToolsRequest", "bastion.v1.ListToolsResponse")
        tools = {t.name: t for t in r.tools}
        assert "list_pods" in tools, sorted(tools)
        t = tools["list_pods"]
        assert t.permission == "k8s:pods:list", t.permission
        assert t.HasField("annotations") and t.annotations.read_only_hint is True, t.annotations
        assert t.annotations.HasField("read_only_hint")
        assert t.annotations.destructive_hint is False, t.annotations
        assert t.description, "list_pods has no description"


def test_call_tool_list_pods_returns_structured_pods_and_a_table():
    with channel() as ch:
        r = default_pods(ch)
        assert r.HasField("is_error") and r.is_error is False
        assert r.WhichOneof("result") == "list_pods", r
        names = [p.name for p in r.list_pods.pods]
        assert names and all(names), "no named pods in default: %r" % names
        assert all(p.namespace == "default" for p in r.list_pods.pods), r.list_pods
        lines = r.text.splitlines()
        assert lines and lines[0].split()[0] == "NAME", "no NAME header:\n" + r.text
        for n in names:
            assert any(line.split()[0] == n for line in lines[1:]), "%s not in:\n%s" % (n, r.text)


def test_call_tool_unknown_namespace_is_a_tool_error_with_helpful_text():
    with channel() as ch:
        r = call_tool(ch, list_pods_request("nosuchns"))
        assert r.is_error is True, r
        assert "nosuchns" in r.text and "not found" in r.text, r.text
        assert r.WhichOneof("result") is None, r


def test_call_tool_invalid_namespace_is_invalid_argument():
    with channel() as ch:
        e = expect_code(grpc.StatusCode.INVALID_ARGUMENT, call_tool, ch,
                        list_pods_request("Prod/../x"))
        assert "namespace" in e.details(), e.details()


def test_call_tool_name_disagreeing_with_arguments_is_invalid_argument():
    with channel() as ch:
        e = expect_code(grpc.StatusCode.INVALID_ARGUMENT, call_tool, ch,
                        list_pods_request("default", name="delete_pods"))
        assert "disagrees" in e.details() and "list_pods" in e.details(), e.details()


def test_call_tool_without_arguments_is_invalid_argument():
    with channel() as ch:
        e = expect_code(grpc.StatusCode.INVALID_ARGUMENT, call_tool, ch,
                        msgs["bastion.v1.CallToolRequest"](name="list_pods"))
        assert "arguments" in e.details(), e.details()


def test_call_tool_empty_name_is_invalid_argument():
    with channel() as ch:
        e = expect_code(grpc.StatusCode.INVALID_ARGUMENT, call_tool, ch,
                        list_pods_request("default", name=""))
        assert "name" in e.details(), e.details()
        req = msgs["bastion.v1.CallToolRequest"](
            list_pods=msgs["bastion.v1.ListPodsArgs"](namespace="default"))
        expect_code(grpc.StatusCode.INVALID_ARGUMENT, call_tool, ch, req)


def test_list_resources_names_every_default_pod():
    # Every object is a resource k8s://NAMESPACE/KIND/NAME (issue 4), as Kubernetes JSON.
    with channel() as ch:
        r = call(ch, "ListResources", "bastion.v1.ListResourcesRequest",
                 "bastion.v1.ListResourcesResponse")
        uris = [x.uri for x in r.resources]
        for p in default_pods(ch).list_pods.pods:
            assert "k8s://default/pod/%s" % p.name in uris, uris
        for x in r.resources:
            assert x.name and x.mime_type == "application/json", x


def test_read_resource_returns_a_pod_as_kubernetes_json():
    with channel() as ch:
        name = default_pods(ch).list_pods.pods[0].name
        uri = "k8s://default/pod/%s" % name
        r = call(ch, "ReadResource", "bastion.v1.ReadResourceRequest",
                 "bastion.v1.ReadResourceResponse", uri=uri)
        assert len(r.contents) == 1, r
        c = r.contents[0]
        assert c.uri == uri and c.mime_type == "application/json", c
        obj = json.loads(c.text)
        assert obj["kind"] == "Pod" and obj["metadata"]["name"] == name, c.text


def test_read_resource_unknown_uri_is_not_found():
    with channel() as ch:
        for uri in ("k8s://namespaces/nosuchns/pods", "file:///etc/passwd",
                    "k8s://namespaces/default/secrets", "k8s://default/pod/nosuchpod"):
            expect_code(grpc.StatusCode.NOT_FOUND, call, ch, "ReadResource",
                        "bastion.v1.ReadResourceRequest", "bastion.v1.ReadResourceResponse",
                        uri=uri)


# ---- Auth -------------------------------------------------------------------------------------


def test_who_am_i_names_the_viewer_certificate():
    with channel("viewer") as ch:
        r = who_am_i(ch)
        p = r.principal
        assert p.name == "spiffe://bastion.local/user/viewer", p
        assert p.mechanism == msgs.pool.FindEnumTypeByName(
            "bastion.v1.AuthMechanism").values_by_name["AUTH_MECHANISM_MTLS"].number, p
        assert p.certificate_identity == p.name, p
        assert HEX64.match(p.certificate_fingerprint_sha256), p.certificate_fingerprint_sha256
        assert HEX32.match(r.request_id), r.request_id


def test_who_am_i_fingerprint_is_the_certificates_sha256():
    import hashlib
    import ssl
    with channel("viewer") as ch:
        pem = harness.read(harness.cert("viewer")[0]).decode()
        want = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
        assert who_am_i(ch).principal.certificate_fingerprint_sha256 == want


def test_response_header_x_request_id_matches_who_am_i():
    with channel("viewer") as ch:
        r, c = who_am_i(ch, with_call=True)
        md = [v for k, v in c.initial_metadata() if k == "x-request-id"]
        assert len(md) == 1, c.initial_metadata()
        assert HEX32.match(md[0]), md[0]
        assert md[0] == r.request_id, (md[0], r.request_id)
        # A second call gets another id.
        r2, c2 = who_am_i(ch, with_call=True)
        assert r2.request_id != r.request_id


def test_who_am_i_cn_only_certificate_is_named_by_its_cn():
    with channel("cnonly") as ch:
        p = who_am_i(ch).principal
        assert p.name == "cnonly", p


def test_who_am_i_two_uri_sans_is_unauthenticated():
    with channel("multi") as ch:
        e = expect_code(grpc.StatusCode.UNAUTHENTICATED, who_am_i, ch)
        assert "URI SANs" in e.details(), e.details()
        expect_code(grpc.StatusCode.UNAUTHENTICATED, ping, ch)


def test_issue_token_without_a_users_file_is_failed_precondition():
    # This server has no auth.users: password login is off, and says so.
    with channel() as ch:
        e = expect_code(grpc.StatusCode.FAILED_PRECONDITION, call, ch, "IssueToken",
                        "bastion.v1.IssueTokenRequest", "bastion.v1.IssueTokenResponse",
                        username="admin", password="x")
        assert "not configured" in e.details()


def can_i(ch, permission, namespace=None):
    fields = {"permission": permission}
    if namespace is not None:
        fields["namespace"] = namespace
    return call(ch, "CanI", "bastion.v1.CanIRequest", "bastion.v1.CanIResponse", **fields)


def test_can_i_answers_from_the_policy_for_the_caller():
    with channel("viewer") as ch:
        r = can_i(ch, "k8s:pods:list", "default")
        assert r.allowed and "viewer" in r.rule, r
        r = can_i(ch, "k8s:pods:delete", "default")
        assert not r.allowed and r.reason, r
        r = can_i(ch, "k8s:pods:list", "production")  # outside the viewer's namespaces
        assert not r.allowed, r
        r = can_i(ch, "k8s:pods:list")  # no namespace: all namespaces, which viewer lacks
        assert not r.allowed, r
        r = can_i(ch, "k8s:pods:list", "")  # "" is invalid, never "all namespaces"
        assert not r.allowed, r
    with channel("admin") as ch:
        assert can_i(ch, "k8s:pods:list").allowed
        expect_code(grpc.StatusCode.INVALID_ARGUMENT, can_i, ch, "")


# ---- Health -----------------------------------------------------------------------------------


def health(ch, service):
    return call(ch, "Check", "grpc.health.v1.HealthCheckRequest",
                "grpc.health.v1.HealthCheckResponse", service=service)


def test_health_check_reports_serving():
    serving = msgs.pool.FindEnumTypeByName(
        "grpc.health.v1.HealthCheckResponse.ServingStatus").values_by_name["SERVING"].number
    with channel() as ch:
        for service in ("", "bastion.v1.Mcp"):
            assert health(ch, service).status == serving, service


def test_health_check_unknown_service_is_not_found():
    with channel() as ch:
        expect_code(grpc.StatusCode.NOT_FOUND, health, ch, "no.such.Service")


# ---- Transport behaviour ----------------------------------------------------------------------


def test_hundred_concurrent_calls_on_one_channel_succeed():
    with channel() as ch:
        ping(ch)  # connect first, so that every call shares one HTTP/2 connection
        with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
            futures = [pool.submit(who_am_i, ch) for _ in range(100)]
            results = [f.result(timeout=30) for f in futures]
        ids = {r.request_id for r in results}
        assert len(ids) == 100, "request ids are not unique: %d distinct" % len(ids)
        assert all(r.principal.name == "spiffe://bastion.local/user/admin" for r in results)


def test_deadline_is_honoured():
    with channel() as ch:
        ping(ch, timeout=5)
        # A deadline that passes in flight: the client gives up (or, rarely, the answer wins).
        try:
            ping(ch, timeout=0.000001)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
        ping(ch, timeout=5)


def test_unknown_method_is_unimplemented():
    # grpcio sends the headers before the body: the server answers from the headers alone, and
    # that answer must reach the client intact.
    with channel() as ch:
        e = expect_code(grpc.StatusCode.UNIMPLEMENTED, harness.unary, ch, msgs,
                        "/bastion.v1.Mcp/Nope", msgs["bastion.v1.PingRequest"](),
                        "bastion.v1.PingResponse")
        assert "unknown method" in e.details(), e.details()
        ping(ch)


def test_message_over_the_limit_is_resource_exhausted():
    # 5 MiB against the default limit of 4 MiB: refused from the length prefix, before the body.
    with channel() as ch:
        e = expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED, call, ch, "Initialize",
                        "bastion.v1.InitializeRequest", "bastion.v1.InitializeResponse",
                        protocol_version="x" * (5 << 20))
        assert "limit" in e.details(), e.details()
        ping(ch)


def test_server_is_alive_after_all_calls():
    with channel() as ch:
        ping(ch)
    assert srv.alive()


def run(tests):
    """harness.run_tests, but returning its exit code so that the server is stopped (and its
    exit code checked) before this process exits; the server log is shown when a test failed."""
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
            test_ping_succeeds,
            test_initialize_echoes_a_supported_protocol_version,
            test_initialize_offers_the_latest_version_for_an_unknown_one,
            test_list_tools_contains_list_pods_with_permission_and_read_only_hint,
            test_call_tool_list_pods_returns_structured_pods_and_a_table,
            test_call_tool_unknown_namespace_is_a_tool_error_with_helpful_text,
            test_call_tool_invalid_namespace_is_invalid_argument,
            test_call_tool_name_disagreeing_with_arguments_is_invalid_argument,
            test_call_tool_without_arguments_is_invalid_argument,
            test_call_tool_empty_name_is_invalid_argument,
            test_list_resources_names_every_default_pod,
            test_read_resource_returns_a_pod_as_kubernetes_json,
            test_read_resource_unknown_uri_is_not_found,
            test_who_am_i_names_the_viewer_certificate,
            test_who_am_i_fingerprint_is_the_certificates_sha256,
            test_response_header_x_request_id_matches_who_am_i,
            test_who_am_i_cn_only_certificate_is_named_by_its_cn,
            test_who_am_i_two_uri_sans_is_unauthenticated,
            test_issue_token_without_a_users_file_is_failed_precondition,
            test_can_i_answers_from_the_policy_for_the_caller,
            test_health_check_reports_serving,
            test_health_check_unknown_service_is_not_found,
            test_hundred_concurrent_calls_on_one_channel_succeed,
            test_deadline_is_honoured,
            test_unknown_method_is_unimplemented,
            test_message_over_the_limit_is_resource_exhausted,
            test_server_is_alive_after_all_calls,
        ])
    sys.exit(code)


if __name__ == "__main__":
    main()
