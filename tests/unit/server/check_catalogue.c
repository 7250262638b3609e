/* Unit tests of the tool catalogue (server/catalogue.c): the table agrees with the proto, and
 * CallTool requests are bound generically (name vs oneof, required fields, namespaces). */
#include "catalogue.h"

#include "bastion/v1/mcp.pb-c.h"

#include <check.h>
#include <ctype.h>
#include <string.h>

static const struct call_method m = {"/bastion.v1.Mcp/CallTool", NULL, NULL, 1, NULL, NULL, 0};

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
        ck_assert_ptr_nonnull(t->run);
        ck_assert_uint_gt(strlen(t->description), 20);
        ck_assert(strncmp(t->permission, "k8s:", 4) == 0);
        if (t->namespace_field != NULL)
            ck_assert_ptr_nonnull(
                protobuf_c_message_descriptor_get_field_by_name(a->descriptor, t->namespace_field));
        ck_assert_ptr_eq(catalogue_find(t->name), t);
    }
}
END_TEST

START_TEST(test_catalogue_field_table_names_real_fields)
{
    for (size_t i = 0; i < catalogue_n_fields; i++) {
        const struct tool_field *f = &catalogue_fields[i];
        const struct tool *t = catalogue_find(f->tool);
        const ProtobufCFieldDescriptor *a;
        ck_assert_msg(t != NULL, "field table names unknown tool %s", f->tool);
        a = protobuf_c_message_descriptor_get_field_by_name(
            &bastion__v1__call_tool_request__descriptor, t->name);
        ck_assert_ptr_nonnull(
            protobuf_c_message_descriptor_get_field_by_name(a->descriptor, f->field));
        ck_assert_uint_gt(strlen(f->description), 5);
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

static enum bst_status bind(const char *name, const char *ns, int set_args, struct call **out)
{
    Bastion__V1__CallToolRequest req = BASTION__V1__CALL_TOOL_REQUEST__INIT;
    Bastion__V1__ListPodsArgs args = BASTION__V1__LIST_PODS_ARGS__INIT;
    const ProtobufCMessage *a = NULL;
    struct call *c;
    enum bst_status rv;

    ck_assert_int_eq(call_new(&c, &m, &ops, NULL, 1 << 20), BST_OK);
    req.name = (char *)name;
    args.namespace_ = (char *)ns;
    if (set_args) {
        req.arguments_case = BASTION__V1__CALL_TOOL_REQUEST__ARGUMENTS_LIST_PODS;
        req.list_pods = &args;
    }
    rv = catalogue_bind(c, &req.base, &a);
    if (rv == BST_OK)
        ck_assert_ptr_eq(a, &args.base);
    *out = c;
    return rv;
}

START_TEST(test_catalogue_bind_sets_tool_permission_and_namespace)
{
    struct call *c;
    ck_assert_int_eq(bind("list_pods", "default", 1, &c), BST_OK);
    ck_assert_str_eq(c->tool->name, "list_pods");
    ck_assert_str_eq(c->permission, "k8s:pods:list");
    ck_assert_str_eq(c->namespace_, "default");
    call_unref(c);
}
END_TEST

START_TEST(test_catalogue_bind_refuses_disagreeing_or_missing_arguments)
{
    struct call *c;
    ck_assert_int_eq(bind("get_pod", "default", 1, &c), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(c->message, "disagrees"));
    ck_assert_ptr_null(c->permission); /* nothing bound on failure */
    call_unref(c);
    ck_assert_int_eq(bind("list_pods", "default", 0, &c), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(c->message, "none set"));
    call_unref(c);
    ck_assert_int_eq(bind("", "default", 1, &c), BST_INVALID_ARGUMENT);
    call_unref(c);
    ck_assert_int_eq(bind(NULL, "default", 1, &c), BST_INVALID_ARGUMENT);
    call_unref(c);
}
END_TEST

START_TEST(test_catalogue_bind_requires_a_valid_namespace)
{
    struct call *c;
    ck_assert_int_eq(bind("list_pods", NULL, 1, &c), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(c->message, "required"));
    call_unref(c);
    ck_assert_int_eq(bind("list_pods", "", 1, &c), BST_INVALID_ARGUMENT);
    call_unref(c);
    ck_assert_int_eq(bind("list_pods", "feature-x/../prod", 1, &c), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(c->message, "DNS-1123"));
    call_unref(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("catalogue");
    TCase *tc = tcase_create("catalogue");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_catalogue_every_tool_has_its_own_oneof_args_and_result);
    tcase_add_test(tc, test_catalogue_field_table_names_real_fields);
    tcase_add_test(tc, test_catalogue_dns_labels);
    tcase_add_test(tc, test_catalogue_bind_sets_tool_permission_and_namespace);
    tcase_add_test(tc, test_catalogue_bind_refuses_disagreeing_or_missing_arguments);
    tcase_add_test(tc, test_catalogue_bind_requires_a_valid_namespace);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
