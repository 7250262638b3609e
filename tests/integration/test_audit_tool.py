"""bastion-audit and the audit files, from the outside: records written by the library (through
tests/unit/audit/audit_driver.c) are read back by `bastion-audit cat/tail/verify/stats`, decoded
by python3-protobuf with nothing but the .proto files (descriptor set built by protoc here), and
checked against docs/audit.md's byte layout by an independent Python implementation of the chain.
Tampering (flipped byte, deleted, reordered and truncated records, a replaced segment) must make
`verify` exit 1 naming the segment and sequence; kill -9 during a write loop must lose no
acknowledged record; the webhook is exercised against a local HTTP server on 127.0.0.1."""

import hashlib
import http.server
import json
import os
import signal
import struct
import subprocess
import tempfile
import threading
import time

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

import harness
from harness import BUILD, SRC, run_tests

TOOL = os.path.join(BUILD, "bin", "bastion-audit")
DRIVER = os.path.join(BUILD, "bin", "audit_driver")
MAGIC = b"BSTAUDIT"
HEADER, RECORD, CHECKPOINT = 1, 2, 3

_classes = None


def classes():
    """AuditRecord, AuditSegmentHeader, AuditCheckpoint, AuditWebhookEntry, AuditWebhookBatch
    classes built from the .proto files alone."""
    global _classes
    if _classes is None:
        out = os.path.join(tempfile.mkdtemp(prefix="bastion-audit-ds-"), "ds.pb")
        subprocess.run(["protoc", "--include_imports", "--descriptor_set_out=" + out,
                        "-I", os.path.join(SRC, "proto"), "bastion/v1/audit_log.proto"],
                       check=True)
        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(harness.read(out))
        pool = descriptor_pool.DescriptorPool()
        for f in fds.file:
            pool.Add(f)
        factory = message_factory.MessageFactory(pool)
        _classes = {n: factory.GetPrototype(pool.FindMessageTypeByName("bastion.v1." + n))
                    for n in ("AuditRecord", "AuditSegmentHeader", "AuditCheckpoint",
                              "AuditWebhookEntry", "AuditWebhookBatch")}
    return _classes


class Log:
    """A fresh directory with a config file for the driver and the tool."""

    def __init__(self, **audit):
        self.root = tempfile.mkdtemp(prefix="bastion-audit-")
        self.dir = os.path.join(self.root, "log")
        self.config = os.path.join(self.root, "bastion.yaml")
        base = {"directory": "log", "max_record_bytes": "4KiB",
                "segment": {"max_bytes": "64KiB"}}
        base.update(audit)
        with open(self.config, "w") as f:
            f.write("audit:\n" + yaml_lines(base, 1))

    def drive(self, *args, check=True, **kw):
        r = subprocess.run([DRIVER, self.config] + list(args), capture_output=True, text=True,
                           timeout=120, **kw)
        if check:
            assert r.returncode == 0, r.stderr
        return r

    def tool(self, *args):
        return subprocess.run([TOOL] + list(args) + ["--dir", self.dir], capture_output=True,
                              timeout=120)

    def segments(self):
        return sorted(n for n in os.listdir(self.dir)
                      if n.startswith("audit-") and n.endswith(".seg"))

    def path(self, name):
        return os.path.join(self.dir, name)


def yaml_lines(d, depth):
    out = ""
    for k, v in d.items():
        if isinstance(v, dict):
            out += "  " * depth + k + ":\n" + yaml_lines(v, depth + 1)
        else:
            out += "  " * depth + "%s: %s\n" % (k, json.dumps(v) if isinstance(v, str) else v)
    return out


def frames(data):
    """Parses a segment by docs/audit.md: magic, then kind:u8 length:u32be payload hash[32]."""
    assert data[:8] == MAGIC
    off, out = 8, []
    while off < len(data):
        kind, length = struct.unpack(">BI", data[off:off + 5])
        payload = data[off + 5:off + 5 + length]
        digest = data[off + 5 + length:off + 5 + length + 32]
        assert len(digest) == 32, "torn frame at %d" % off
        out.append({"off": off, "len": 37 + length, "kind": kind, "payload": payload,
                    "hash": digest})
        off += 37 + length
    return out


def chain(prev, kind, payload):
    return hashlib.sha256(prev + struct.pack(">BI", kind, len(payload)) + payload).digest()


def records_by_python(log):
    """Every record of the log decoded by python3-protobuf, with the chain checked in Python."""
    c = classes()
    prev, out = None, []
    for name in log.segments():
        fs = frames(harness.read(log.path(name)))
        header = c["AuditSegmentHeader"].FromString(fs[0]["payload"])
        assert header.format_version == 1
        if prev is None:
            prev = header.previous_hash
        assert header.previous_hash == prev, "%s does not link to its predecessor" % name
        for fr in fs:
            h = chain(prev, fr["kind"], fr["payload"])
            assert h == fr["hash"], "chain broken in %s at %d" % (name, fr["off"])
            prev = h
            if fr["kind"] == RECORD:
                out.append((c["AuditRecord"].FromString(fr["payload"]), h))
    return out


def cat(log, *filters):
    r = log.tool("cat", *filters)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.decode().splitlines()]


def verify(log, *args):
    r = log.tool("verify", *args)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


# ---- Reading ----------------------------------------------------------------------------------

def test_cat_prints_one_json_line_per_record_and_filters():
    log = Log()
    log.drive("write", "100")
    rows = cat(log)
    assert len(rows) == 102  # startup + 100 + shutdown
    assert [int(r["sequence"]) for r in rows] == list(range(1, 103))
    assert rows[0]["action"] == "startup" and rows[-1]["action"] == "shutdown"
    assert len(cat(log, "--type", "request")) == 80
    assert len(cat(log, "--type", "AUDIT_EVENT_AUTHENTICATION")) == 10
    assert all(r["principal"]["name"] == "alice" for r in cat(log, "--user", "alice"))
    assert len(cat(log, "--user", "alice")) == 34
    denied = cat(log, "--result", "denied")
    assert len(denied) == 20 and all(r["result"] == "denied" for r in denied)
    assert all(r["namespace"] == "prod" for r in cat(log, "--namespace", "prod"))
    assert len(cat(log, "--since", "1h")) == 102
    assert cat(log, "--until", "2000-01-01T00:00:00Z") == []
    assert cat(log, "--since", "2999-01-01T00:00:00+02:00") == []
    assert len(cat(log, "--since", "0", "--until", str(int(time.time()) + 60))) == 102
    # Each line parses back into an AuditRecord with a stock protobuf JSON parser.
    rec = json_format.ParseDict(rows[5], classes()["AuditRecord"]())
    assert rec.sequence == 6


def test_records_decode_with_python_protobuf_from_the_proto_alone():
    log = Log(compliance_tags={"request": "CC6.1, CC7.2"})
    log.drive("write", "30", "hostile", "big")
    recs = records_by_python(log)
    assert [r.sequence for r, _ in recs] == list(range(1, len(recs) + 1))
    reqs = [r for r, _ in recs if r.event_type == 3 and r.request_id]
    assert reqs and all(list(r.compliance_tags) == ["CC6.1", "CC7.2"] for r in reqs)
    # Invalid UTF-8 was replaced before writing, so the strict Python decoder accepted it.
    names = [r.principal.name for r, _ in recs if r.principal.name]
    assert "bad\ufffd\ufffdutf8\ufffd" in names
    assert "evil\x1b[31mred\x1b[0m" in names  # stored faithfully, escaped only when shown
    big = [r for r, _ in recs if r.truncated]
    assert len(big) == 1 and len(big[0].SerializeToString()) <= 4096


def test_rendering_escapes_controls_ansi_newlines_and_bidi():
    log = Log()
    log.drive("hostile")
    for cmd in (["cat"], ["stats"], ["tail", "-n", "50"]):
        r = log.tool(*cmd)
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert b"\x1b" not in out and b"\xc2\x9b" not in out and b"\r" not in out
        assert b"\xe2\x80\xae" not in out and b"\x7f" not in out
        text = out.decode("utf-8")  # valid UTF-8 throughout
        assert "\\u001b[31m" in text and "\\u202e" in text and "\\u009b" in text
    lines = log.tool("cat").stdout.decode().splitlines()
    assert len(lines) == 9  # startup, 7 hostile, shutdown: no record spilled onto two lines
    values = [json.loads(line).get("result", "") for line in lines]
    assert "line1\nline2\r\n" in values  # escaping is lossless for valid text


def test_stats_counts_by_type_user_and_result():
    log = Log()
    log.drive("write", "100")
    r = log.tool("stats", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["records"] == 102 and s["first_sequence"] == 1 and s["last_sequence"] == 102
    assert s["type"] == {"request": 80, "authentication": 10, "authorization": 10, "admin": 2}
    assert s["user"] == {"alice": 34, "bob": 33, "carol": 33, "": 2}
    assert s["result"] == {"ok": 72, "denied": 20, "unauthenticated": 10}
    text = log.tool("stats", "--type", "authorization").stdout.decode()
    assert "records: 10 " in text and '"denied"' in text


def test_tail_follows_new_records_across_segments():
    log = Log()
    log.drive("write", "5")
    p = subprocess.Popen([TOOL, "tail", "-f", "-n", "2", "--dir", log.dir],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = [json.loads(p.stdout.readline()) for _ in range(2)]
        assert [r["sequence"] for r in first] == [6, 7]  # the last two: 5th write, shutdown
        log.drive("write", "400")  # a new run: new segments
        seen = [json.loads(p.stdout.readline()) for _ in range(402)]
        assert [r["sequence"] for r in seen] == list(range(8, 410))
    finally:
        p.kill()
        p.wait()
    assert len(log.segments()) >= 3


def test_config_option_reads_the_audit_section_with_relative_paths():
    log = Log()
    log.drive("write", "3")
    r = subprocess.run([TOOL, "verify", "--config", log.config], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("OK "), r.stdout + r.stderr
    r = subprocess.run([TOOL, "verify"], capture_output=True, text=True)
    assert r.returncode == 2 and "--dir or --config" in r.stderr
    r = subprocess.run([TOOL, "frobnicate", "--dir", log.dir], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run([TOOL, "cat", "--dir", log.dir, "--since", "yesterday"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "cannot read the time" in r.stderr


# ---- Verifying --------------------------------------------------------------------------------

def head_of(out):
    line = [x for x in out.splitlines() if x.startswith("head ")][0]
    return line.split()[1]


def test_verify_passes_and_its_head_is_an_anchor():
    log = Log()
    log.drive("write", "600")
    rc, out = verify(log)
    assert rc == 0 and out.startswith("OK "), out
    head = head_of(out)
    seq, digest = head.split(":")
    recs = records_by_python(log)
    assert int(seq) == recs[-1][0].sequence and bytes.fromhex(digest) == recs[-1][1]
    rc, out = verify(log, "--anchor", head)
    assert rc == 0 and "1 anchors matched" in out, out
    rc, out = verify(log, "--anchor", seq + ":" + "00" * 32)
    assert rc == 1 and "rewritten" in out, out


def tampered(mutate):
    """A multi-segment log with the middle segment mutated by mutate(frames, data) -> data.
    Returns (log, middle segment name, sequence of the record mutate chose)."""
    log = Log()
    log.drive("write", "1000")
    segs = log.segments()
    assert len(segs) >= 3
    mid = log.path(segs[1])
    data = harness.read(mid)
    fs = frames(data)
    new, seq = mutate(fs, data)
    with open(mid, "wb") as f:
        f.write(new)
    return log, segs, seq


def record_frames(fs):
    return [f for f in fs if f["kind"] == RECORD]


def seq_of(fr):
    return classes()["AuditRecord"].FromString(fr["payload"]).sequence


def expect_fault(log, segment, seq, words):
    rc, out = verify(log)
    assert rc == 1, out
    assert "FAULT segment=%s sequence=%d " % (segment, seq) in out, out
    assert words in out, out


def test_verify_locates_a_flipped_byte():
    def flip(fs, data):
        fr = record_frames(fs)[10]
        b = bytearray(data)
        b[fr["off"] + 5 + 12] ^= 0x20
        return bytes(b), seq_of(fr)
    log, segs, seq = tampered(flip)
    expect_fault(log, segs[1], seq, "altered")


def test_verify_locates_a_deleted_record():
    def delete(fs, data):
        fr = record_frames(fs)[10]
        return data[:fr["off"]] + data[fr["off"] + fr["len"]:], seq_of(fr)
    log, segs, seq = tampered(delete)
    expect_fault(log, segs[1], seq, "deleted or reordered")


def test_verify_locates_reordered_records():
    def swap(fs, data):
        a, b = record_frames(fs)[10:12]
        assert b["off"] == a["off"] + a["len"]
        x = data[a["off"]:a["off"] + a["len"]]
        y = data[b["off"]:b["off"] + b["len"]]
        return data[:a["off"]] + y + x + data[b["off"] + b["len"]:], seq_of(a)
    log, segs, seq = tampered(swap)
    expect_fault(log, segs[1], seq, "reordered")


def test_verify_locates_a_truncated_record():
    def cut(fs, data):
        fr = record_frames(fs)[10]
        return data[:fr["off"] + 20], seq_of(fr)
    log, segs, seq = tampered(cut)
    expect_fault(log, segs[1], seq, "truncated")
    # Allowing a torn tail forgives only the last segment.
    rc, out = verify(log, "--allow-torn-tail")
    assert rc == 1 and "segment=%s" % segs[1] in out, out


def rechain_segment(path, change):
    """Rewrites a segment with change(record) applied to one record and the chain recomputed
    from its header: what an attacker without the signing key can do."""
    c = classes()
    data = harness.read(path)
    fs = frames(data)
    prev = c["AuditSegmentHeader"].FromString(fs[0]["payload"]).previous_hash
    out = MAGIC
    changed = False
    for fr in fs:
        payload = fr["payload"]
        if fr["kind"] == RECORD and not changed and seq_of(fr) % 7 == 3:
            rec = c["AuditRecord"].FromString(payload)
            change(rec)
            payload = rec.SerializeToString()
            changed = True
        elif fr["kind"] == CHECKPOINT:
            cp = c["AuditCheckpoint"].FromString(payload)
            cp.chain_hash = prev  # re-aimed at the new chain; the signature cannot be redone
            payload = cp.SerializeToString()
        h = chain(prev, fr["kind"], payload)
        out += struct.pack(">BI", fr["kind"], len(payload)) + payload + h
        prev = h
    assert changed
    with open(path, "wb") as f:
        f.write(out)


def test_verify_names_a_replaced_segment():
    log = Log()
    log.drive("write", "1000")
    segs = log.segments()

    def deny(rec):
        rec.result = "ok-and-nothing-happened"
    rechain_segment(log.path(segs[1]), deny)
    rc, out = verify(log)
    assert rc == 1 and "segment=%s" % segs[2] in out and segs[1] in out, out
    assert "replaced" in out, out


# ---- Signatures and anchors -------------------------------------------------------------------

def keygen(log, name):
    priv = os.path.join(log.root, name + ".pem")
    pub = os.path.join(log.root, name + ".pub")
    r = subprocess.run([TOOL, "keygen", "--out", priv, "--pub", pub], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert oct(os.stat(priv).st_mode & 0o777) == "0o600"
    return priv, pub, r.stdout.strip()


def test_signatures_verify_across_key_rotation_and_match_the_documented_bytes():
    log = Log(signing={"key": "k1.pem", "public_keys_dir": "keys"}, checkpoint={"records": 20})
    _, _, id1 = keygen(log, "k1")
    k2, pub2, id2 = keygen(log, "k2")
    log.drive("write", "50", "rotate", k2, "write", "50")
    keys = os.path.join(log.root, "keys")
    assert sorted(os.listdir(keys)) == sorted([id1 + ".pem", id2 + ".pem"])
    rc, out = verify(log, "--keys", keys)
    assert rc == 0 and "signatures verified" in out, out
    rc, out = subprocess.run([TOOL, "verify", "--config", log.config], capture_output=True,
                             text=True).returncode, ""
    assert rc == 0
    rows = cat(log, "--type", "admin")
    assert [r["action"] for r in rows].count("key_rotation") == 1
    # Check one checkpoint per key id with the openssl CLI, from docs/audit.md's layout.
    c = classes()
    checked = set()
    prev_hash = None
    for name in log.segments():
        for fr in frames(harness.read(log.path(name))):
            if fr["kind"] == CHECKPOINT:
                cp = c["AuditCheckpoint"].FromString(fr["payload"])
                assert cp.chain_hash == prev_hash
                tbs = (b"bastion-audit-checkpoint-v1\0" + struct.pack(">Q", cp.sequence) +
                       cp.chain_hash + bytes([len(cp.key_id)]) + cp.key_id.encode())
                if cp.key_id in checked:
                    continue
                tf = os.path.join(log.root, "tbs")
                sf = os.path.join(log.root, "sig")
                open(tf, "wb").write(tbs)
                open(sf, "wb").write(cp.signature)
                r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
                                    os.path.join(keys, cp.key_id + ".pem"), "-rawin",
                                    "-in", tf, "-sigfile", sf], capture_output=True, text=True)
                assert r.returncode == 0, r.stdout + r.stderr
                checked.add(cp.key_id)
            prev_hash = fr["hash"]
    assert checked == {id1, id2}
    # A rewritten last segment keeps a consistent chain but not a valid signature.
    rechain_segment(log.path(log.segments()[-1]), lambda rec: setattr(rec, "result", "OK"))
    rc, out = verify(log, "--keys", keys)
    assert rc == 1 and "signature" in out, out
    # Only the new key: the old checkpoints name an unknown key.
    only = os.path.join(log.root, "only")
    os.mkdir(only)
    os.link(pub2, os.path.join(only, id2 + ".pem"))
    rc, out = verify(log, "--keys", only)
    assert rc == 1 and "unknown key id" in out, out


# ---- Crashes ----------------------------------------------------------------------------------

def test_kill_9_in_a_write_loop_loses_no_acknowledged_record():
    log = Log(mode="blocking")
    p = subprocess.Popen([DRIVER, log.config, "loop"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    acked = []
    while len(acked) < 300:
        line = p.stdout.readline()
        assert line, "driver stopped"
        acked.append(line.split()[1])
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    # Before any restart: every complete record reads; a torn tail is at most a warning.
    rc, out = verify(log, "--allow-torn-tail")
    assert rc == 0, out
    ids = {r.get("request_id") for r in cat(log)}
    assert all(a in ids for a in acked)
    # Make sure a torn tail exists (the kill may have landed between writes), then restart.
    last = log.path(log.segments()[-1])
    size = os.path.getsize(last)
    with open(last, "ab") as f:
        f.write(b"\x02\x00\x00\x01\x00partial")
    log.drive("write", "1")
    rc, out = verify(log)
    assert rc == 0, out
    rows = cat(log)
    assert all(a in {r.get("request_id") for r in rows} for a in acked)
    torn = [r for r in rows if r.get("action") == "torn_tail"]
    assert len(torn) == 1 and "offset %d" % size in torn[0]["detail"], torn
    assert torn[0]["event_type"] == "AUDIT_EVENT_ADMIN"
    assert any(".torn-" in n for n in os.listdir(log.dir))


# ---- Webhook ----------------------------------------------------------------------------------

class Collector:
    """An HTTP server on 127.0.0.1 that stores POST bodies; the first `fail` answers are 503."""

    def __init__(self, fail=0):
        self.bodies, self.headers, self.fail = [], [], fail
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers["Content-Length"])
                body = self.rfile.read(n)
                if outer.fail > 0:
                    outer.fail -= 1
                    self.send_response(503)
                else:
                    outer.bodies.append(body)
                    outer.headers.append(dict(self.headers))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/audit" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_webhook_jsonl_carries_every_record_and_checkpoint_and_survives_503s():
    col = Collector(fail=2)
    try:
        log = Log(webhook={"url": col.url, "batch_records": 50, "batch_wait": "50ms",
                           "retry_backoff": "50ms"},
                  checkpoint={"records": 100})
        log.drive("write", "400")
        c = classes()
        entries = []
        for body, hdr in zip(col.bodies, col.headers):
            assert hdr["Content-Type"] == "application/x-ndjson"
            for line in body.decode().splitlines():
                entries.append(json_format.ParseDict(json.loads(line),
                                                     c["AuditWebhookEntry"]()))
        recs = [e for e in entries if e.HasField("record")]
        cps = [e.checkpoint for e in entries if e.HasField("checkpoint")]
        assert [e.record.sequence for e in recs] == list(range(1, 403))
        on_disk = records_by_python(log)
        assert [e.chain_hash for e in recs] == [h for _, h in on_disk]
        assert len(cps) >= 4
        # A checkpoint received by the webhook is an anchor outside the files.
        anchor = "%d:%s" % (cps[-1].sequence, cps[-1].chain_hash.hex())
        rc, out = verify(log, "--anchor", anchor)
        assert rc == 0, out
        assert len(log.segments()) >= 2
        os.remove(log.path(log.segments()[-1]))
        log_rc, out = verify(log, "--anchor", anchor)
        assert log_rc == 1 and "truncated" in out, out
    finally:
        col.close()


def test_webhook_protobuf_batches_hold_the_exact_record_bytes():
    col = Collector()
    try:
        log = Log(webhook={"url": col.url, "format": "protobuf", "batch_records": 100})
        r = log.drive("write", "25", "stats")
        c = classes()
        got = []
        for body, hdr in zip(col.bodies, col.headers):
            assert hdr["Content-Type"] == "application/x-protobuf"
            batch = c["AuditWebhookBatch"].FromString(body)
            assert batch.instance and hdr["X-Bastion-Audit-Instance"] == batch.instance
            got += [e for e in batch.entries if e.HasField("record")]
        on_disk = {}
        for name in log.segments():
            for fr in frames(harness.read(log.path(name))):
                if fr["kind"] == RECORD:
                    on_disk[seq_of(fr)] = (fr["payload"], fr["hash"])
        assert len(got) == 27
        for e in got:
            payload, digest = on_disk[e.record.sequence]
            assert e.chain_hash == digest
            assert e.record.SerializeToString() == payload or \
                c["AuditRecord"].FromString(payload) == e.record
        assert json.loads(r.stdout.splitlines()[-1])["webhook_lost"] == 0
    finally:
        col.close()


if __name__ == "__main__":
    run_tests([
        test_cat_prints_one_json_line_per_record_and_filters,
        test_records_decode_with_python_protobuf_from_the_proto_alone,
        test_rendering_escapes_controls_ansi_newlines_and_bidi,
        test_stats_counts_by_type_user_and_result,
        test_tail_follows_new_records_across_segments,
        test_config_option_reads_the_audit_section_with_relative_paths,
        test_verify_passes_and_its_head_is_an_anchor,
        test_verify_locates_a_flipped_byte,
        test_verify_locates_a_deleted_record,
        test_verify_locates_reordered_records,
        test_verify_locates_a_truncated_record,
        test_verify_names_a_replaced_segment,
        test_signatures_verify_across_key_rotation_and_match_the_documented_bytes,
        test_kill_9_in_a_write_loop_loses_no_acknowledged_record,
        test_webhook_jsonl_carries_every_record_and_checkpoint_and_survives_503s,
        test_webhook_protobuf_batches_hold_the_exact_record_bytes,
    ])
