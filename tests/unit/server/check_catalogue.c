/* Unit tests of the tool catalogue (server/catalogue.c): the table agrees with the proto, the
 * per-field table names real fields, CallTool requests are bound generically (name vs oneof,
 * the field table's rules, namespaces and all_namespaces), tool-level errors, redaction, and a
 * snapshot of the whole ListTools catalogue.
 *
 * The snapshot is tests/unit/server/catalogue.snapshot.json. After an intended change to the
 * catalogue, regenerate it and review the diff:
 *     BASTION_UPDATE_SNAPSHOT=1 BASTION_SRC=$PWD build/bin/check_catalogue */
#include "catalogue.h"
#include "pbcheck.h"

#include "bastion/v1/mcp.pb-c.h"

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct call_method m = {.path = "/bastion.v1.Mcp/CallTool", .requires_principal = 1};

static void nop_post(struct call *c)
{
    (void)c;
}

static void nop_finish(struct call *c, enum bst_status s, const char *msg)
{
    (void)c;
    (void)s;
    (void)msg;
}

static const struct call_host_ops ops = {nop_post, nop_finish};

static struct call *new_call(void)
{
    struct call *c;
    ck_assert_int_eq(call_new(&c, &m, &ops, NULL, 1 << 20), BST_OK);
    return c;
}

/* "list_pods" → "ListPods" */
static void camel(const char *in, char *out, size_t n)
{
    size_t o = 0;
    int up = 1;
    for (; *in && o + 1 < n; in++) {
        if (*in == '_') {
            up = 1;
            continue;
        }
        out[o++] = up ? (char)toupper((unsigned char)*in) : *in;
        up = 0;
    }
    out[o] = '\0';
}

START_TEST(test_catalogue_every_tool_has_its_own_oneof_args_and_result)
{
    const ProtobufCMessageDescriptor *req = &bastion__v1__call_tool_request__descriptor;
    const ProtobufCMessageDescriptor *resp = &bastion__v1__call_tool_response__descriptor;
    size_t oneof_args = 0;
    for (unsigned i = 0; i < req->n_fields; i++)
        oneof_args += (req->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
    ck_assert_uint_eq(oneof_args, catalogue_n_tools); /* no oneof member without a tool */
    ck_assert_uint_eq(catalogue_n_tools, 15);
    for (size_t i = 0; i < catalogue_n_tools; i++) {
        const struct tool *t = &catalogue_tools[i];
        const ProtobufCFieldDescriptor *a =
            protobuf_c_message_descriptor_get_field_by_name(req, t->name);
        const ProtobufCFieldDescriptor *r =
            protobuf_c_message_descriptor_get_field_by_name(resp, t->name);
        char want[128], cname[96];
        ck_assert_msg(a != NULL && r != NULL, "%s: no oneof field", t->name);
        ck_assert(a->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
        ck_assert(r->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
        ck_assert_uint_eq(a->id, 10 + i); /* field numbers follow the table order */
        ck_assert_uint_eq(r->id, 10 + i);
        camel(t->name, cname, sizeof(cname));
        snprintf(want, sizeof(want), "bastion.v1.%sArgs", cname);
        ck_assert_str_eq(((const ProtobufCMessageDescriptor *)a->descriptor)->name, want);
        snprintf(want, sizeof(want), "bastion.v1.%sResult", cname);
        ck_assert_str_eq(((const ProtobufCMessageDescriptor *)r->descriptor)->name, want);
        ck_assert_ptr_nonnull(t->invoke);
        ck_assert_ptr_nonnull(t->render);
        ck_assert_uint_gt(strlen(t->description), 40);
        ck_assert_ptr_nonnull(t->title);
        ck_assert(strncmp(t->permission, "k8s:", 4) == 0);
        if (t->namespace_field != NULL)
            ck_assert_ptr_nonnull(
                protobuf_c_message_descriptor_get_field_by_name(a->descriptor, t->namespace_field));
        if (t->all_namespaces_field != NULL)
            ck_assert_ptr_nonnull(protobuf_c_message_descriptor_get_field_by_name(
                a->descriptor, t->all_namespaces_field));
        /* Read-only tools say so and are idempotent; nothing is both read-only and destructive. */
        ck_assert(!((t->hints & TOOL_READ_ONLY) && (t->hints & TOOL_DESTRUCTIVE)));
        if (t->hints & TOOL_READ_ONLY)
            ck_assert(t->hints & TOOL_IDEMPOTENT);
        ck_assert_ptr_eq(catalogue_find(t->name), t);
        ck_assert(!bst_pb_is_recursive(a->descriptor));
        ck_assert(!bst_pb_is_recursive(r->descriptor));
    }
}
END_TEST

/* Finds a bastion.v1 message by short name among those reachable from d. */
static const ProtobufCMessageDescriptor *find_message(const ProtobufCMessageDescriptor *d,
                                                      const char *short_name, int depth)
{
    if (strcmp(d->short_name, short_name) == 0)
        return d;
    if (depth > 8)
        return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCMessageDescriptor *sub;
        if (d->fields[i].type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((sub = find_message(d->fields[i].descriptor, short_name, depth + 1)) != NULL)
            return sub;
    }
    return NULL;
}

START_TEST(test_catalogue_field_table_names_real_fields_with_consistent_rules)
{
    for (size_t i = 0; i < catalogue_n_fields; i++) {
        const struct tool_field *f = &catalogue_fields[i];
        const ProtobufCMessageDescriptor *d =
            find_message(&bastion__v1__call_tool_request__descriptor, f->message, 0);
        const ProtobufCFieldDescriptor *fd;
        if (d == NULL)
            d = find_message(&bastion__v1__call_tool_response__descriptor, f->message, 0);
        ck_assert_msg(d != NULL, "row %zu: no message %s", i, f->message);
        fd = protobuf_c_message_descriptor_get_field_by_name(d, f->field);
        ck_assert_msg(fd != NULL, "row %zu: %s has no field %s", i, f->message, f->field);
        ck_assert_msg(f->info.description != NULL && strlen(f->info.description) > 5,
                      "%s.%s has no description", f->message, f->field);
        ck_assert_ptr_eq(catalogue_field_lookup(d, fd, NULL), &f->info);
        if (f->info.valid != NULL)
            ck_assert_msg(f->info.syntax != NULL, "%s.%s: valid() without syntax", f->message,
                          f->field);
        if (f->info.default_json != NULL) {
            json_t *j = json_loads(f->info.default_json, JSON_DECODE_ANY, NULL);
            ck_assert_msg(j != NULL, "%s.%s: bad default", f->message, f->field);
            json_decref(j);
        }
        if (f->info.has_bounds)
            ck_assert(f->info.min <= f->info.max);
        for (size_t k = 0; k < i; k++)
            ck_assert_msg(strcmp(catalogue_fields[k].message, f->message) != 0 ||
                              strcmp(catalogue_fields[k].field, f->field) != 0,
                          "%s.%s twice", f->message, f->field);
    }
    /* Every namespace argument of a namespaced tool is checked as a DNS-1123 label. */
    for (size_t i = 0; i < catalogue_n_tools; i++) {
        const struct tool *t = &catalogue_tools[i];
        const ProtobufCFieldDescriptor *a = protobuf_c_message_descriptor_get_field_by_name(
            &bastion__v1__call_tool_request__descriptor, t->name);
        const struct bst_pbjson_field_info *inf;
        if (t->namespace_field == NULL)
            continue;
        inf = catalogue_field_lookup(
            a->descriptor,
            protobuf_c_message_descriptor_get_field_by_name(a->descriptor, t->namespace_field),
            NULL);
        ck_assert_msg(inf != NULL && inf->valid != NULL && inf->max_len == 63, "%s", t->name);
        ck_assert_int_eq(inf->required, t->all_namespaces_field == NULL);
    }
}
END_TEST

START_TEST(test_catalogue_dns_labels)
{
    const char *good[] = {"default", "a", "feature-login", "kube-system", "x1", "0abc"};
    const char *bad[] = {"",
                         "-a",
                         "a-",
                         "Prod",
                         "a.b",
                         "a/b",
                         "feature-x/../prod",
                         "a b",
                         "feature-x\n",
                         "%2F",
                         "..",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(catalogue_dns_label_ok(good[i]), "%s refused", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!catalogue_dns_label_ok(bad[i]), "'%s' accepted", bad[i]);
}
END_TEST

/* Binds a CallToolRequest given as JSON through the generic mapping (as the bridge will). */
static enum bst_status bind_json(const char *text, struct call **out, const ProtobufCMessage **args,
                                 ProtobufCMessage **req)
{
    json_t *j = json_loads(text, 0, NULL);
    struct bst_err err = {BST_OK, ""};
    struct call *c = new_call();
    enum bst_status rv;

    ck_assert_msg(j != NULL, "bad test JSON %s", text);
    ck_assert_msg(bst_pbjson_decode(&bastion__v1__call_tool_request__descriptor, j, NULL, req,
                                    &err) == BST_OK,
                  "%s", err.msg);
    json_decref(j);
    rv = catalogue_bind(c, *req, args);
    *out = c;
    return rv;
}

static void bound(const char *text, const char *permission, const char *ns)
{
    struct call *c;
    const ProtobufCMessage *a = NULL;
    ProtobufCMessage *req = NULL;
    ck_assert_msg(bind_json(text, &c, &a, &req) == BST_OK, "%s: %s", text, c->message);
    ck_assert_str_eq(c->permission, permission);
    if (ns == NULL)
        ck_assert_ptr_null(c->namespace_);
    else
        ck_assert_str_eq(c->namespace_, ns);
    ck_assert_ptr_nonnull(a);
    call_unref(c);
    protobuf_c_message_free_unpacked(req, NULL);
}

static void refused(const char *text, const char *want)
{
    struct call *c;
    const ProtobufCMessage *a = NULL;
    ProtobufCMessage *req = NULL;
    ck_assert_msg(bind_json(text, &c, &a, &req) == BST_INVALID_ARGUMENT, "%s bound", text);
    ck_assert_msg(strstr(c->message, want) != NULL, "'%s' not in '%s'", want, c->message);
    ck_assert_msg(strstr(c->message, "CANARY") == NULL, "value echoed: %s", c->message);
    ck_assert_ptr_null(c->permission); /* nothing bound on failure */
    ck_assert_ptr_null(c->tool);
    call_unref(c);
    protobuf_c_message_free_unpacked(req, NULL);
}

START_TEST(test_catalogue_bind_sets_tool_permission_and_namespace)
{
    bound("{\"name\":\"list_pods\",\"list_pods\":{\"namespace\":\"default\"}}", "k8s:pods:list",
          "default");
    bound("{\"name\":\"list_namespaces\",\"list_namespaces\":{}}", "k8s:namespaces:list", NULL);
    bound("{\"name\":\"scale_deployment\",\"scale_deployment\":{\"namespace\":\"staging\","
          "\"name\":\"web\",\"replicas\":3}}",
          "k8s:deployments:scale", "staging");
    bound("{\"name\":\"create_secret\",\"create_secret\":{\"namespace\":\"default\",\"name\":\"s\","
          "\"data\":[{\"key\":\"k\",\"value\":\"v\"}]}}",
          "k8s:secrets:manage", "default");
}
END_TEST

START_TEST(test_catalogue_bind_refuses_disagreeing_or_missing_arguments)
{
    refused("{\"name\":\"get_pod\",\"list_pods\":{\"namespace\":\"default\"}}", "disagrees");
    refused("{\"name\":\"list_pods\"}", "none set");
    refused("{\"name\":\"\",\"list_pods\":{\"namespace\":\"default\"}}", "name");
    refused("{\"list_pods\":{\"namespace\":\"default\"}}", "name");
}
END_TEST

START_TEST(test_catalogue_bind_requires_a_namespace_or_an_explicit_all_namespaces)
{
    refused("{\"name\":\"list_pods\",\"list_pods\":{}}",
            "list_pods.namespace: required (or set all_namespaces: true)");
    refused("{\"name\":\"list_pods\",\"list_pods\":{\"namespace\":\"\"}}", "required");
    refused("{\"name\":\"list_pods\",\"list_pods\":{\"namespace\":\"feature-x/../prod\"}}",
            "list_pods.namespace: must be a DNS-1123 label");
    refused("{\"name\":\"list_pods\",\"list_pods\":{\"namespace\":\"default\","
            "\"all_namespaces\":true}}",
            "not both");
    refused("{\"name\":\"list_pods\",\"list_pods\":{\"namespace\":\"\",\"all_namespaces\":true}}",
            "not both");
    refused("{\"name\":\"get_pod\",\"get_pod\":{\"name\":\"x\"}}", "get_pod.namespace: required");
    /* all_namespaces: false is not "all". */
    refused("{\"name\":\"list_pods\",\"list_pods\":{\"all_namespaces\":false}}", "required");
    bound("{\"name\":\"list_pods\",\"list_pods\":{\"all_namespaces\":true}}", "k8s:pods:list",
          NULL);
    bound("{\"name\":\"list_events\",\"list_events\":{\"all_namespaces\":true,\"type\":"
          "\"Warning\"}}",
          "k8s:events:list", NULL);
}
END_TEST

START_TEST(test_catalogue_bind_applies_the_field_table_and_tool_checks)
{
    refused("{\"name\":\"scale_deployment\",\"scale_deployment\":{\"namespace\":\"default\","
            "\"name\":\"web\",\"replicas\":101}}",
            "scale_deployment.replicas: must be between 0 and 100");
    refused("{\"name\":\"scale_deployment\",\"scale_deployment\":{\"namespace\":\"default\","
            "\"name\":\"web\",\"replicas\":-1}}",
            "scale_deployment.replicas: must be between 0 and 100");
    refused("{\"name\":\"scale_deployment\",\"scale_deployment\":{\"namespace\":\"default\","
            "\"name\":\"web\"}}",
            "scale_deployment.replicas: required");
    refused("{\"name\":\"get_pod\",\"get_pod\":{\"namespace\":\"default\",\"name\":\"Web_1\"}}",
            "get_pod.name: must be a DNS-1123 subdomain");
    refused("{\"name\":\"list_pods\",\"list_pods\":{\"namespace\":\"default\","
            "\"label_selector\":\"app in (CANARY\"}}",
            "list_pods.label_selector: must be a label selector");
    refused("{\"name\":\"list_events\",\"list_events\":{\"namespace\":\"default\","
            "\"type\":\"CANARY\"}}",
            "list_events.type: must be Normal or Warning");
    refused("{\"name\":\"get_pod_logs\",\"get_pod_logs\":{\"namespace\":\"default\",\"name\":\"p\","
            "\"tail_lines\":100001}}",
            "get_pod_logs.tail_lines: must be between 0 and 100000");
    refused(
        "{\"name\":\"create_secret\",\"create_secret\":{\"namespace\":\"default\",\"name\":\"s\","
        "\"data\":[{\"key\":\"a/b\",\"value\":\"CANARY\"}]}}",
        "create_secret.data[0].key: must be a key");
    refused(
        "{\"name\":\"create_secret\",\"create_secret\":{\"namespace\":\"default\",\"name\":\"s\","
        "\"type\":\"CANARY\"}}",
        "create_secret.type: must be Opaque");
    refused("{\"name\":\"create_resource\",\"create_resource\":{\"namespace\":\"default\","
            "\"manifest\":\"apiVersion: v1\\nkind: Pod\\nmetadata: {name: p}\\nspec:\\n  "
            "containers: [{name: c, image: i, securityContext: {privileged: true}}]\\n\"}}",
            "create_resource.manifest: spec.containers[0].securityContext.privileged");
    refused("{\"name\":\"create_resource\",\"create_resource\":{\"namespace\":\"default\"}}",
            "create_resource.manifest: required");
}
END_TEST

START_TEST(test_catalogue_replica_bounds_are_configurable)
{
    struct call *c = new_call();
    Bastion__V1__Tool *t;
    json_t *s;

    ck_assert_int_eq(catalogue_set_replica_bounds(5, 1), -1);
    ck_assert_int_eq(catalogue_set_replica_bounds(1, 5), 0);
    refused("{\"name\":\"scale_deployment\",\"scale_deployment\":{\"namespace\":\"default\","
            "\"name\":\"web\",\"replicas\":6}}",
            "must be between 1 and 5");
    refused("{\"name\":\"scale_deployment\",\"scale_deployment\":{\"namespace\":\"default\","
            "\"name\":\"web\",\"replicas\":0}}",
            "must be between 1 and 5");
    t = catalogue_tool_message(c, catalogue_find("scale_deployment"));
    s = json_loads(t->input_schema_json, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(json_object_get(s, "properties"), "replicas"), "maximum")),
                     5);
    json_decref(s);
    ck_assert_int_eq(catalogue_set_replica_bounds(0, 100), 0);
    call_unref(c);
    catalogue_shutdown();
}
END_TEST

START_TEST(test_catalogue_sensitive_secret_values_are_redacted)
{
    const char *text = "{\"name\":\"create_secret\",\"create_secret\":{\"namespace\":\"default\","
                       "\"name\":\"s\",\"data\":[{\"key\":\"password\",\"value\":\"CANARY\"}]}}";
    json_t *j = json_loads(text, 0, NULL), *out;
    ProtobufCMessage *req = NULL;
    struct bst_err err;
    char *dumped;

    ck_assert_int_eq(
        bst_pbjson_decode(&bastion__v1__call_tool_request__descriptor, j, NULL, &req, &err),
        BST_OK);
    out = bst_pbjson_encode(req, catalogue_field_lookup, NULL, BST_PBJSON_REDACT);
    dumped = json_dumps(out, JSON_COMPACT);
    ck_assert_ptr_null(strstr(dumped, "CANARY"));
    ck_assert_ptr_nonnull(strstr(dumped, "\"key\":\"password\""));
    free(dumped);
    json_decref(out);
    json_decref(j);
    protobuf_c_message_free_unpacked(req, NULL);
}
END_TEST

/* ---- calls against the simulated cluster --------------------------------------------------- */

static Bastion__V1__CallToolResponse *call_tool(const char *text, struct call **out)
{
    const ProtobufCMessage *a = NULL;
    ProtobufCMessage *req = NULL;
    struct call *c;
    ck_assert_msg(bind_json(text, &c, &a, &req) == BST_OK, "%s", c->message);
    ck_assert_int_eq(catalogue_call(c, a), CALL_NEXT);
    /* The response lives in the call's arena; the request can go. */
    protobuf_c_message_free_unpacked(req, NULL);
    *out = c;
    return (Bastion__V1__CallToolResponse *)c->response;
}

START_TEST(test_catalogue_call_gives_text_and_typed_results_and_tool_level_errors)
{
    struct kube_backend *kube;
    struct bst_err err = {BST_OK, ""};
    Bastion__V1__CallToolResponse *r;
    struct call *c;

    ck_assert_msg(kube_sim_new(&kube, NULL, &err) == BST_OK, "%s", err.msg);
    catalogue_set_backend(kube);
    r = call_tool("{\"name\":\"list_pods\",\"list_pods\":{\"namespace\":\"default\"}}", &c);
    ck_assert(!r->is_error);
    ck_assert_int_eq(r->result_case, BASTION__V1__CALL_TOOL_RESPONSE__RESULT_LIST_PODS);
    ck_assert_uint_gt(r->list_pods->n_pods, 0);
    ck_assert_int_eq(strncmp(r->text, "NAME", 4), 0);
    call_unref(c);
    r = call_tool("{\"name\":\"list_pods\",\"list_pods\":{\"namespace\":\"nosuchns\"}}", &c);
    ck_assert(r->is_error);
    ck_assert_int_eq(r->result_case, BASTION__V1__CALL_TOOL_RESPONSE__RESULT__NOT_SET);
    ck_assert_str_eq(r->text, "Error from server (NotFound): namespaces \"nosuchns\" not found");
    call_unref(c);
    r = call_tool("{\"name\":\"create_secret\",\"create_secret\":{\"namespace\":\"default\","
                  "\"name\":\"web-tls\",\"data\":[{\"key\":\"k\",\"value\":\"CANARY\"}]}}",
                  &c);
    ck_assert(r->is_error);
    ck_assert_str_eq(r->text,
                     "Error from server (AlreadyExists): secrets \"web-tls\" already exists");
    call_unref(c);
    r = call_tool("{\"name\":\"scale_deployment\",\"scale_deployment\":{\"namespace\":\"default\","
                  "\"name\":\"web\",\"replicas\":4}}",
                  &c);
    ck_assert(!r->is_error);
    ck_assert_int_eq(r->scale_deployment->previous_replicas, 2);
    ck_assert_str_eq(r->text, "deployment.apps/web scaled from 2 to 4 replicas\n");
    call_unref(c);
    catalogue_set_backend(NULL);
    kube_backend_free(kube);
}
END_TEST

/* ---- the snapshot -------------------------------------------------------------------------- */

/* The whole catalogue as ListTools returns it, with the schema texts parsed so that the
 * snapshot shows them as JSON. */
static json_t *catalogue_json(void)
{
    struct call *c = new_call();
    json_t *tools = json_array();
    for (size_t i = 0; i < catalogue_n_tools; i++) {
        Bastion__V1__Tool *t = catalogue_tool_message(c, &catalogue_tools[i]);
        json_t *j;
        ck_assert_ptr_nonnull(t);
        j = bst_pbjson_encode(&t->base, NULL, NULL, 0);
        ck_assert_ptr_nonnull(j);
        json_object_set_new(j, "input_schema_json", json_loads(t->input_schema_json, 0, NULL));
        json_object_set_new(j, "output_schema_json", json_loads(t->output_schema_json, 0, NULL));
        ck_assert_ptr_nonnull(json_object_get(j, "input_schema_json"));
        ck_assert_ptr_nonnull(json_object_get(j, "output_schema_json"));
        json_array_append_new(tools, j);
    }
    call_unref(c);
    return json_pack("{s:o}", "tools", tools);
}

START_TEST(test_catalogue_snapshot_matches_the_committed_file)
{
    const char *src = getenv("BASTION_SRC");
    char path[4096];
    json_t *now = catalogue_json(), *want;
    json_error_t e;
    char *a, *b;

    ck_assert_msg(src != NULL, "BASTION_SRC is not set");
    snprintf(path, sizeof(path), "%s/tests/unit/server/catalogue.snapshot.json", src);
    if (getenv("BASTION_UPDATE_SNAPSHOT") != NULL)
        ck_assert_int_eq(json_dump_file(now, path, JSON_INDENT(2) | JSON_SORT_KEYS), 0);
    want = json_load_file(path, 0, &e);
    ck_assert_msg(want != NULL, "%s: %s (regenerate: BASTION_UPDATE_SNAPSHOT=1)", path, e.text);
    a = json_dumps(now, JSON_INDENT(2) | JSON_SORT_KEYS);
    b = json_dumps(want, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (strcmp(a, b) != 0) {
        size_t i = 0;
        while (a[i] == b[i])
            i++;
        ck_abort_msg("the catalogue differs from %s at byte %zu:\n...%.200s\nexpected\n...%.200s\n"
                     "If the change is intended: BASTION_UPDATE_SNAPSHOT=1 BASTION_SRC=... "
                     "check_catalogue, and review the diff.",
                     path, i, a + (i > 80 ? i - 80 : 0), b + (i > 80 ? i - 80 : 0));
    }
    free(a);
    free(b);
    json_decref(now);
    json_decref(want);
    catalogue_shutdown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("catalogue");
    TCase *tc = tcase_create("catalogue");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_catalogue_every_tool_has_its_own_oneof_args_and_result);
    tcase_add_test(tc, test_catalogue_field_table_names_real_fields_with_consistent_rules);
    tcase_add_test(tc, test_catalogue_dns_labels);
    tcase_add_test(tc, test_catalogue_bind_sets_tool_permission_and_namespace);
    tcase_add_test(tc, test_catalogue_bind_refuses_disagreeing_or_missing_arguments);
    tcase_add_test(tc, test_catalogue_bind_requires_a_namespace_or_an_explicit_all_namespaces);
    tcase_add_test(tc, test_catalogue_bind_applies_the_field_table_and_tool_checks);
    tcase_add_test(tc, test_catalogue_replica_bounds_are_configurable);
    tcase_add_test(tc, test_catalogue_sensitive_secret_values_are_redacted);
    tcase_add_test(tc, test_catalogue_call_gives_text_and_typed_results_and_tool_level_errors);
    tcase_add_test(tc, test_catalogue_snapshot_matches_the_committed_file);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
