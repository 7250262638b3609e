#!/usr/bin/python3
"""Calls bastiond with a stock gRPC client (Debian's python3-grpcio) using only the .proto files:
protoc compiles them to a descriptor set at run time. A stand-in for grpcurl, which Debian lacks.

Usage: /usr/bin/python3 scripts/grpc-call.py METHOD [JSON] [--server HOST:PORT] [--ca F]
                                               [--cert F] [--key F] [--timeout S]
METHOD is Ping, Initialize, ListTools, CallTool, ListResources, ReadResource (bastion.v1.Mcp),
WhoAmI, CanI, IssueToken (bastion.v1.Auth), Check (grpc.health.v1.Health), or a full
/package.Service/Method path. JSON is the request message in protobuf JSON form."""

import argparse
import os
import subprocess
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SERVICES = {"bastion.v1.Mcp": "bastion/v1/mcp.proto", "bastion.v1.Auth": "bastion/v1/auth.proto",
            "grpc.health.v1.Health": "grpc/health/v1/health.proto"}


def load_pool():
    out = os.path.join(tempfile.mkdtemp(), "ds.pb")
    subprocess.run(["protoc", "--include_imports", "--descriptor_set_out=" + out,
                    "-I", os.path.join(ROOT, "proto")] + list(SERVICES.values()), check=True)
    fds = descriptor_pb2.FileDescriptorSet()
    with open(out, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    return pool


def message_class(pool, desc):
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("method")
    ap.add_argument("json", nargs="?", default="{}")
    ap.add_argument("--server", default=os.environ.get("BASTION_SERVER", "localhost:8443"))
    ap.add_argument("--ca", default=os.environ.get("BASTION_CA", "certs/dev/ca.crt"))
    ap.add_argument("--cert", default=os.environ.get("BASTION_CERT", "certs/dev/admin.crt"))
    ap.add_argument("--key", default=os.environ.get("BASTION_KEY", "certs/dev/admin.key"))
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()

    pool = load_pool()
    method = None
    if a.method.startswith("/"):
        svc, name = a.method[1:].rsplit("/", 1)
        method = pool.FindServiceByName(svc).FindMethodByName(name)
    else:
        for svc in SERVICES:
            m = pool.FindServiceByName(svc).methods_by_name.get(a.method)
            if m is not None:
                method = m
                break
    if method is None:
        sys.exit("unknown method %s" % a.method)
    req_cls = message_class(pool, method.input_type)
    resp_cls = message_class(pool, method.output_type)
    req = json_format.Parse(a.json, req_cls())

    def rd(p):
        with open(p, "rb") as f:
            return f.read()
    creds = grpc.ssl_channel_credentials(rd(a.ca), rd(a.key), rd(a.cert))
    path = "/%s/%s" % (method.containing_service.full_name, method.name)
    host, _, port = a.server.rpartition(":")
    options = []
    if host == "localhost":
        # Dial loopback directly and still check the certificate for "localhost", so the call
        # does not depend on how grpc's resolver treats the name.
        options = [("grpc.ssl_target_name_override", "localhost"),
                   ("grpc.default_authority", "localhost")]
        a.server = "127.0.0.1:" + port
    with grpc.secure_channel(a.server, creds, options=options) as ch:
        call = ch.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=resp_cls.FromString)
        try:
            resp, info = call.with_call(req, timeout=a.timeout)
        except grpc.RpcError as e:
            print("%s: %s" % (e.code().name, e.details()), file=sys.stderr)
            sys.exit(1)
    rid = dict(info.initial_metadata()).get("x-request-id", "")
    print(json_format.MessageToJson(resp, preserving_proto_field_name=True))
    print("x-request-id: %s" % rid, file=sys.stderr)


if __name__ == "__main__":
    main()
