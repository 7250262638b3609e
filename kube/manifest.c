/* Manifest parsing and checks for create_resource (see manifest.h): YAML or JSON into one JSON
 * tree, then a walk that knows the fields of the four accepted kinds and the Pod Security
 * Standards "restricted" profile. */
#include "manifest.h"
#include "names.h"
#include "strict_yaml.h"
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PSS " (Pod Security Standard \"restricted\")"

struct mv {
    struct bst_err *err;
    char path[256];
    size_t len;
    const struct kube_manifest_limits *lim;
};

static size_t push(struct mv *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t push(struct mv *m, const char *fmt, ...)
{
    size_t old = m->len;
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(m->path + m->len, sizeof(m->path) - m->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        m->len += (size_t)n < sizeof(m->path) - m->len ? (size_t)n : sizeof(m->path) - 1 - m->len;
    m->path[m->len] = '\0';
    return old;
}

static size_t field(struct mv *m, const char *name)
{
    return push(m, m->len == 0 ? "%s" : ".%s", name);
}

static void pop(struct mv *m, size_t old)
{
    m->len = old;
    m->path[old] = '\0';
}

static enum bst_status bad(struct mv *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum bst_status bad(struct mv *m, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return bst_errf(m->err, BST_INVALID_ARGUMENT, "%s: %s", m->len ? m->path : "manifest", msg);
}

/* Runs check on the member key of obj (when present), with the path extended by key. */
#define AT(m, obj, key, call)                                                                      \
    do {                                                                                           \
        json_t *v_ = json_object_get((obj), (key));                                                \
        if (v_ != NULL) {                                                                          \
            size_t o_ = field((m), (key));                                                         \
            enum bst_status r_ = call;                                                             \
            if (r_ != BST_OK)                                                                      \
                return r_;                                                                         \
            pop((m), o_);                                                                          \
        }                                                                                          \
    } while (0)

/* ---- YAML to JSON -------------------------------------------------------------------------- */

static int plain_int(const char *s, size_t n)
{
    size_t i = s[0] == '-';
    if (i == n || n - i > 18)
        return 0;
    if (s[i] == '0' && n - i > 1)
        return 0;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int plain_float(const char *s, size_t n)
{
    size_t i = s[0] == '-', digits = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (digits == 0 || i == n || s[i] != '.')
        return 0;
    for (i++, digits = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    return digits > 0 && i == n;
}

static const char *const yaml11[] = {"y",    "Y",    "yes",   "Yes",   "YES",  "n",    "N",   "no",
                                     "No",   "NO",   "on",    "On",    "ON",   "off",  "Off", "OFF",
                                     "True", "TRUE", "False", "FALSE", "Null", "NULL", NULL};

static enum bst_status yaml_to_json(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                                    json_t **out, struct bst_err *err)
{
    *out = NULL;
    if (n->kind == BST_YAML_MAP) {
        json_t *o = json_object();
        if (o == NULL)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        for (size_t i = 0; i < n->n; i++) {
            json_t *v;
            enum bst_status rv = yaml_to_json(doc, n->items[i], &v, err);
            if (rv == BST_OK && json_object_set_new(o, n->keys[i]->value, v) != 0)
                rv = bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, n->keys[i],
                                   "a key that is not valid UTF-8 text");
            if (rv != BST_OK) {
                json_decref(o);
                return rv;
            }
        }
        *out = o;
        return BST_OK;
    }
    if (n->kind == BST_YAML_SEQ) {
        json_t *a = json_array();
        if (a == NULL)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        for (size_t i = 0; i < n->n; i++) {
            json_t *v;
            enum bst_status rv = yaml_to_json(doc, n->items[i], &v, err);
            if (rv == BST_OK && json_array_append_new(a, v) != 0)
                rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
            if (rv != BST_OK) {
                json_decref(a);
                return rv;
            }
        }
        *out = a;
        return BST_OK;
    }
    if (!n->plain) {
        *out = json_stringn(n->value, n->len);
    } else if (n->len == 0 || strcmp(n->value, "null") == 0 || strcmp(n->value, "~") == 0) {
        *out = json_null();
    } else if (strcmp(n->value, "true") == 0) {
        *out = json_true();
    } else if (strcmp(n->value, "false") == 0) {
        *out = json_false();
    } else if (plain_int(n->value, n->len)) {
        *out = json_integer(strtoll(n->value, NULL, 10));
    } else if (plain_float(n->value, n->len)) {
        *out = json_real(strtod(n->value, NULL));
    } else {
        for (size_t i = 0; yaml11[i] != NULL; i++)
            if (strcmp(n->value, yaml11[i]) == 0)
                return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, n,
                                     "YAML 1.1 tools read this word as a boolean or null; write "
                                     "true, false or null, or quote it");
        *out = json_stringn(n->value, n->len);
    }
    return *out != NULL ? BST_OK : bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
}

/* ---- generic checks ------------------------------------------------------------------------ */

/* obj must be an object whose keys are all in allowed; refused lists say why. */
static enum bst_status keys(struct mv *m, const json_t *obj, const char *const *allowed)
{
    const char *k;
    json_t *v;
    if (!json_is_object(obj))
        return bad(m, "expected a mapping");
    json_object_foreach((json_t *)obj, k, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        if (!ok) {
            size_t o;
            /* Name the key only when it is a plain identifier (it is then no secret). */
            int plain = strlen(k) <= 64;
            for (const char *c = k; *c && plain; c++)
                plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                        (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.';
            if (!plain)
                return bad(m, "unknown field");
            o = field(m, k);
            (void)o;
            return bad(m, "unknown field");
        }
    }
    return BST_OK;
}

static enum bst_status want_string(struct mv *m, const json_t *v, size_t max)
{
    if (!json_is_string(v))
        return bad(m, "expected a string");
    if (json_string_length(v) > max)
        return bad(m, "longer than %zu bytes", max);
    if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
        return bad(m, "NUL character");
    return BST_OK;
}

static enum bst_status want_bool(struct mv *m, const json_t *v)
{
    return json_is_boolean(v) ? BST_OK : bad(m, "expected true or false");
}

static enum bst_status want_int(struct mv *m, const json_t *v, int64_t lo, int64_t hi)
{
    if (!json_is_integer(v))
        return bad(m, "expected an integer");
    if (json_integer_value(v) < lo || json_integer_value(v) > hi)
        return bad(m, "must be between %lld and %lld", (long long)lo, (long long)hi);
    return BST_OK;
}

static enum bst_status want_one_of(struct mv *m, const json_t *v, const char *const *values,
                                   const char *why)
{
    if (!json_is_string(v))
        return bad(m, "expected a string");
    for (size_t i = 0; values[i] != NULL; i++)
        if (strcmp(json_string_value(v), values[i]) == 0)
            return BST_OK;
    return bad(m, "%s", why);
}

static enum bst_status want_array(struct mv *m, const json_t *v, size_t max)
{
    if (!json_is_array(v))
        return bad(m, "expected a list");
    if (json_array_size(v) > max)
        return bad(m, "more than %zu entries", max);
    return BST_OK;
}

/* A map of label keys to label values. */
static enum bst_status want_labels(struct mv *m, const json_t *v)
{
    const char *k;
    json_t *x;
    if (!json_is_object(v))
        return bad(m, "expected a mapping of keys to strings");
    json_object_foreach((json_t *)v, k, x)
    {
        size_t o;
        if (!kube_label_key_ok(k))
            return bad(m, "invalid label key");
        o = field(m, k);
        if (!json_is_string(x))
            return bad(m, "expected a string");
        if (!kube_label_value_okn(json_string_value(x), json_string_length(x)))
            return bad(m, "invalid label value: at most 63 of A-Z, a-z, 0-9, '-', '_', '.', "
                          "alphanumeric at both ends");
        pop(m, o);
    }
    return BST_OK;
}

static enum bst_status want_annotations(struct mv *m, const json_t *v)
{
    const char *k;
    json_t *x;
    size_t total = 0;
    if (!json_is_object(v))
        return bad(m, "expected a mapping of keys to strings");
    json_object_foreach((json_t *)v, k, x)
    {
        if (!kube_label_key_ok(k))
            return bad(m, "invalid annotation key");
        if (!json_is_string(x)) {
            size_t o = field(m, k);
            (void)o;
            return bad(m, "expected a string");
        }
        total += strlen(k) + json_string_length(x);
    }
    return total > 256 * 1024 ? bad(m, "larger than 256 KiB in total") : BST_OK;
}

/* ---- metadata ------------------------------------------------------------------------------ */

static enum bst_status check_metadata(struct mv *m, json_t *meta, const char *ns,
                                      int (*name_ok)(const char *), const char *name_rule)
{
    static const char *const allowed[] = {"name", "namespace", "labels", "annotations", NULL};
    static const char *const cluster_set[] = {
        "uid",        "resourceVersion", "creationTimestamp", "deletionTimestamp",
        "generation", "managedFields",   "selfLink",          "deletionGracePeriodSeconds",
        NULL};
    json_t *name = json_object_get(meta, "name"), *mns;
    size_t o;

    if (!json_is_object(meta))
        return bad(m, "expected a mapping");
    for (size_t i = 0; cluster_set[i] != NULL; i++)
        if (json_object_get(meta, cluster_set[i]) != NULL) {
            o = field(m, cluster_set[i]);
            (void)o;
            return bad(m, "set by the cluster; remove it");
        }
    if (json_object_get(meta, "generateName") != NULL) {
        o = field(m, "generateName");
        (void)o;
        return bad(m, "not supported; give metadata.name");
    }
    if (json_object_get(meta, "ownerReferences") != NULL ||
        json_object_get(meta, "finalizers") != NULL) {
        o = field(m,
                  json_object_get(meta, "finalizers") != NULL ? "finalizers" : "ownerReferences");
        (void)o;
        return bad(m, "not accepted: objects created here belong to no other object");
    }
    if (keys(m, meta, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    o = field(m, "name");
    if (name == NULL)
        return bad(m, "required");
    if (want_string(m, name, 253) != BST_OK)
        return BST_INVALID_ARGUMENT;
    if (!name_ok(json_string_value(name)))
        return bad(m, "must be %s", name_rule);
    pop(m, o);
    if ((mns = json_object_get(meta, "namespace")) != NULL) {
        o = field(m, "namespace");
        if (!json_is_string(mns) || strcmp(json_string_value(mns), ns) != 0)
            return bad(m, "must equal the namespace argument \"%s\" (or be left out)", ns);
        pop(m, o);
    }
    AT(m, meta, "labels", want_labels(m, v_));
    AT(m, meta, "annotations", want_annotations(m, v_));
    return json_object_set_new(meta, "namespace", json_string(ns)) == 0
               ? BST_OK
               : bst_errf(m->err, BST_RESOURCE_EXHAUSTED, "out of memory");
}

/* ---- Pod Security Standards ---------------------------------------------------------------- */

static const char *const safe_sysctls[] = {"kernel.shm_rmid_forced",
                                           "net.ipv4.ip_local_port_range",
                                           "net.ipv4.ip_unprivileged_port_start",
                                           "net.ipv4.tcp_syncookies",
                                           "net.ipv4.ping_group_range",
                                           "net.ipv4.ip_local_reserved_ports",
                                           "net.ipv4.tcp_keepalive_time",
                                           "net.ipv4.tcp_fin_timeout",
                                           "net.ipv4.tcp_keepalive_intvl",
                                           "net.ipv4.tcp_keepalive_probes",
                                           NULL};

static enum bst_status check_seccomp(struct mv *m, const json_t *v)
{
    static const char *const ok[] = {"RuntimeDefault", "Localhost", NULL};
    static const char *const allowed[] = {"type", "localhostProfile", NULL};
    if (keys(m, v, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    AT(m, v, "type",
       want_one_of(m, v_, ok,
                   "must be RuntimeDefault or Localhost; Unconfined is not allowed" PSS));
    if (json_object_get(v, "type") == NULL) {
        size_t o = field(m, "type");
        (void)o;
        return bad(m, "required");
    }
    return BST_OK;
}

static enum bst_status check_selinux(struct mv *m, const json_t *v)
{
    static const char *const allowed[] = {"type", "level", "user", "role", NULL};
    static const char *const types[] = {
        "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t", NULL};
    if (keys(m, v, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    AT(m, v, "user", bad(m, "custom SELinux users are not allowed" PSS));
    AT(m, v, "role", bad(m, "custom SELinux roles are not allowed" PSS));
    AT(m, v, "type",
       want_one_of(m, v_, types,
                   "only container_t, container_init_t, container_kvm_t and container_engine_t "
                   "are allowed" PSS));
    AT(m, v, "level", want_string(m, v_, 256));
    return BST_OK;
}

static enum bst_status check_windows(struct mv *m, const json_t *v)
{
    static const char *const allowed[] = {"gmsaCredentialSpecName", "gmsaCredentialSpec",
                                          "runAsUserName", "hostProcess", NULL};
    if (keys(m, v, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    if (json_is_true(json_object_get(v, "hostProcess"))) {
        size_t o = field(m, "hostProcess");
        (void)o;
        return bad(m, "Windows host processes are not allowed" PSS);
    }
    return BST_OK;
}

static enum bst_status check_apparmor(struct mv *m, const json_t *v)
{
    static const char *const ok[] = {"RuntimeDefault", "Localhost", NULL};
    static const char *const allowed[] = {"type", "localhostProfile", NULL};
    if (keys(m, v, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    AT(m, v, "type",
       want_one_of(m, v_, ok,
                   "must be RuntimeDefault or Localhost; Unconfined is not allowed" PSS));
    return BST_OK;
}

static enum bst_status want_uid(struct mv *m, const json_t *v)
{
    if (want_int(m, v, 0, 2147483647) != BST_OK)
        return BST_INVALID_ARGUMENT;
    return json_integer_value(v) == 0 ? bad(m, "running as root (UID 0) is not allowed" PSS)
                                      : BST_OK;
}

static enum bst_status want_true_nonroot(struct mv *m, const json_t *v)
{
    if (want_bool(m, v) != BST_OK)
        return BST_INVALID_ARGUMENT;
    return json_is_true(v) ? BST_OK : bad(m, "must be true" PSS);
}

struct podsec {
    int non_root; /* the pod's securityContext.runAsNonRoot is true */
    int seccomp;  /* the pod's securityContext.seccompProfile is set (and allowed) */
};

static enum bst_status check_pod_security(struct mv *m, const json_t *sc, struct podsec *ps)
{
    static const char *const allowed[] = {"runAsUser",
                                          "runAsGroup",
                                          "runAsNonRoot",
                                          "fsGroup",
                                          "fsGroupChangePolicy",
                                          "supplementalGroups",
                                          "supplementalGroupsPolicy",
                                          "seccompProfile",
                                          "seLinuxOptions",
                                          "sysctls",
                                          "windowsOptions",
                                          "appArmorProfile",
                                          "seLinuxChangePolicy",
                                          NULL};
    const json_t *sysctls = json_object_get(sc, "sysctls");
    if (keys(m, sc, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    AT(m, sc, "runAsUser", want_uid(m, v_));
    AT(m, sc, "runAsGroup", want_int(m, v_, 0, 2147483647));
    AT(m, sc, "fsGroup", want_int(m, v_, 0, 2147483647));
    AT(m, sc, "runAsNonRoot", want_true_nonroot(m, v_));
    AT(m, sc, "seccompProfile", check_seccomp(m, v_));
    AT(m, sc, "seLinuxOptions", check_selinux(m, v_));
    AT(m, sc, "windowsOptions", check_windows(m, v_));
    AT(m, sc, "appArmorProfile", check_apparmor(m, v_));
    if (sysctls != NULL) {
        size_t o = field(m, "sysctls");
        if (want_array(m, sysctls, 64) != BST_OK)
            return BST_INVALID_ARGUMENT;
        for (size_t i = 0; i < json_array_size(sysctls); i++) {
            const json_t *s = json_array_get(sysctls, i);
            static const char *const skeys[] = {"name", "value", NULL};
            size_t o2 = push(m, "[%zu]", i);
            if (keys(m, s, skeys) != BST_OK)
                return BST_INVALID_ARGUMENT;
            AT(m, s, "name",
               want_one_of(m, v_, safe_sysctls, "only the safe sysctls are allowed" PSS));
            AT(m, s, "value", want_string(m, v_, 1024));
            pop(m, o2);
        }
        pop(m, o);
    }
    ps->non_root = json_is_true(json_object_get(sc, "runAsNonRoot"));
    ps->seccomp = json_object_get(sc, "seccompProfile") != NULL;
    return BST_OK;
}

static enum bst_status check_capabilities(struct mv *m, const json_t *caps)
{
    static const char *const allowed[] = {"add", "drop", NULL};
    const json_t *add = json_object_get(caps, "add"), *drop = json_object_get(caps, "drop");
    int all = 0;
    size_t o;

    if (keys(m, caps, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    if (add != NULL) {
        o = field(m, "add");
        if (want_array(m, add, 64) != BST_OK)
            return BST_INVALID_ARGUMENT;
        for (size_t i = 0; i < json_array_size(add); i++) {
            const json_t *c = json_array_get(add, i);
            if (!json_is_string(c) || strcmp(json_string_value(c), "NET_BIND_SERVICE") != 0) {
                push(m, "[%zu]", i);
                return bad(m, "adding capabilities is not allowed (only NET_BIND_SERVICE)" PSS);
            }
        }
        pop(m, o);
    }
    o = field(m, "drop");
    if (drop != NULL && want_array(m, drop, 64) != BST_OK)
        return BST_INVALID_ARGUMENT;
    for (size_t i = 0; drop != NULL && i < json_array_size(drop); i++) {
        const json_t *c = json_array_get(drop, i);
        if (!json_is_string(c))
            return bad(m, "expected a list of strings");
        all |= strcmp(json_string_value(c), "ALL") == 0;
    }
    if (!all)
        return bad(m, "must include ALL" PSS);
    pop(m, o);
    return BST_OK;
}

static enum bst_status check_container_security(struct mv *m, const json_t *c,
                                                const struct podsec *ps)
{
    static const char *const allowed[] = {"privileged",
                                          "allowPrivilegeEscalation",
                                          "capabilities",
                                          "runAsUser",
                                          "runAsGroup",
                                          "runAsNonRoot",
                                          "readOnlyRootFilesystem",
                                          "procMount",
                                          "seccompProfile",
                                          "seLinuxOptions",
                                          "windowsOptions",
                                          "appArmorProfile",
                                          NULL};
    static const char *const proc[] = {"Default", NULL};
    const json_t *sc = json_object_get(c, "securityContext"), *ape, *nonroot, *seccomp;
    size_t o = field(m, "securityContext");

    if (sc != NULL && keys(m, sc, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    if (sc != NULL) {
        const json_t *priv = json_object_get(sc, "privileged");
        if (priv != NULL) {
            size_t o2 = field(m, "privileged");
            if (want_bool(m, priv) != BST_OK)
                return BST_INVALID_ARGUMENT;
            if (json_is_true(priv))
                return bad(m, "privileged containers are not allowed" PSS);
            pop(m, o2);
        }
        AT(m, sc, "capabilities", check_capabilities(m, v_));
        AT(m, sc, "runAsUser", want_uid(m, v_));
        AT(m, sc, "runAsGroup", want_int(m, v_, 0, 2147483647));
        AT(m, sc, "readOnlyRootFilesystem", want_bool(m, v_));
        AT(m, sc, "procMount",
           want_one_of(m, v_, proc, "only the Default /proc mount is allowed" PSS));
        AT(m, sc, "seccompProfile", check_seccomp(m, v_));
        AT(m, sc, "seLinuxOptions", check_selinux(m, v_));
        AT(m, sc, "windowsOptions", check_windows(m, v_));
        AT(m, sc, "appArmorProfile", check_apparmor(m, v_));
    }
    ape = sc != NULL ? json_object_get(sc, "allowPrivilegeEscalation") : NULL;
    if (ape == NULL || !json_is_false(ape)) {
        field(m, "allowPrivilegeEscalation");
        return bad(m, "must be set to false" PSS);
    }
    if (sc == NULL || json_object_get(sc, "capabilities") == NULL) {
        field(m, "capabilities");
        field(m, "drop");
        return bad(m, "must include ALL" PSS);
    }
    nonroot = json_object_get(sc, "runAsNonRoot");
    if (nonroot != NULL) {
        size_t o2 = field(m, "runAsNonRoot");
        if (want_true_nonroot(m, nonroot) != BST_OK)
            return BST_INVALID_ARGUMENT;
        pop(m, o2);
    } else if (!ps->non_root) {
        field(m, "runAsNonRoot");
        return bad(m, "must be true, here or in the pod's securityContext" PSS);
    }
    seccomp = json_object_get(sc, "seccompProfile");
    if (seccomp == NULL && !ps->seccomp) {
        field(m, "seccompProfile");
        return bad(m, "must be RuntimeDefault or Localhost, here or in the pod's "
                      "securityContext" PSS);
    }
    pop(m, o);
    return BST_OK;
}

/* ---- containers and pods ------------------------------------------------------------------- */

static enum bst_status check_ports(struct mv *m, const json_t *ports)
{
    static const char *const allowed[] = {"containerPort", "hostPort", "hostIP",
                                          "name",          "protocol", NULL};
    static const char *const protocols[] = {"TCP", "UDP", "SCTP", NULL};
    if (want_array(m, ports, 128) != BST_OK)
        return BST_INVALID_ARGUMENT;
    for (size_t i = 0; i < json_array_size(ports); i++) {
        const json_t *p = json_array_get(ports, i);
        size_t o = push(m, "[%zu]", i);
        if (keys(m, p, allowed) != BST_OK)
            return BST_INVALID_ARGUMENT;
        if (json_object_get(p, "containerPort") == NULL) {
            field(m, "containerPort");
            return bad(m, "required");
        }
        AT(m, p, "containerPort", want_int(m, v_, 1, 65535));
        AT(m, p, "hostPort",
           json_is_integer(v_) && json_integer_value(v_) == 0
               ? BST_OK
               : bad(m, "host ports are not allowed (Pod Security Standard \"baseline\")"));
        AT(m, p, "hostIP",
           bad(m, "host ports are not allowed (Pod Security Standard \"baseline\")"));
        AT(m, p, "name", want_string(m, v_, 15));
        AT(m, p, "protocol", want_one_of(m, v_, protocols, "must be TCP, UDP or SCTP"));
        pop(m, o);
    }
    return BST_OK;
}

static enum bst_status check_container(struct mv *m, const json_t *c, const struct podsec *ps)
{
    static const char *const allowed[] = {"name",
                                          "image",
                                          "command",
                                          "args",
                                          "workingDir",
                                          "ports",
                                          "env",
                                          "envFrom",
                                          "resources",
                                          "resizePolicy",
                                          "restartPolicy",
                                          "volumeMounts",
                                          "livenessProbe",
                                          "readinessProbe",
                                          "startupProbe",
                                          "lifecycle",
                                          "terminationMessagePath",
                                          "terminationMessagePolicy",
                                          "imagePullPolicy",
                                          "securityContext",
                                          "stdin",
                                          "stdinOnce",
                                          "tty",
                                          NULL};
    static const char *const pull[] = {"Always", "IfNotPresent", "Never", NULL};
    const json_t *name = json_object_get(c, "name"), *image = json_object_get(c, "image");

    if (keys(m, c, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    if (name == NULL || !json_is_string(name) || !kube_dns1123_label_ok(json_string_value(name))) {
        field(m, "name");
        return bad(m,
                   name == NULL ? "required" : "must be a DNS-1123 label (1-63 of a-z, 0-9, '-')");
    }
    if (image == NULL || !json_is_string(image) || json_string_length(image) == 0) {
        field(m, "image");
        return bad(m, "required");
    }
    AT(m, c, "image", want_string(m, v_, 1024));
    AT(m, c, "ports", check_ports(m, v_));
    AT(m, c, "imagePullPolicy", want_one_of(m, v_, pull, "must be Always, IfNotPresent or Never"));
    AT(m, c, "command", want_array(m, v_, 256));
    AT(m, c, "args", want_array(m, v_, 1024));
    AT(m, c, "env", want_array(m, v_, 1024));
    AT(m, c, "volumeMounts", want_array(m, v_, 256));
    return check_container_security(m, c, ps);
}

static enum bst_status check_containers(struct mv *m, const json_t *list, const struct podsec *ps,
                                        int required)
{
    if (want_array(m, list, 64) != BST_OK)
        return BST_INVALID_ARGUMENT;
    if (required && json_array_size(list) == 0)
        return bad(m, "at least one container is required");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *c = json_array_get(list, i);
        size_t o = push(m, "[%zu]", i);
        enum bst_status rv = check_container(m, c, ps);
        if (rv != BST_OK)
            return rv;
        for (size_t k = 0; k < i; k++)
            if (json_equal(json_object_get(json_array_get(list, k), "name"),
                           json_object_get(c, "name"))) {
                field(m, "name");
                return bad(m, "duplicate container name");
            }
        pop(m, o);
    }
    return BST_OK;
}

static enum bst_status check_volumes(struct mv *m, const json_t *vols)
{
    static const char *const sources[] = {"configMap", "secret",      "emptyDir",
                                          "projected", "downwardAPI", "persistentVolumeClaim",
                                          "csi",       "ephemeral",   NULL};
    if (want_array(m, vols, 256) != BST_OK)
        return BST_INVALID_ARGUMENT;
    for (size_t i = 0; i < json_array_size(vols); i++) {
        const json_t *v = json_array_get(vols, i);
        const json_t *name = json_object_get(v, "name");
        const char *k;
        json_t *x;
        size_t o = push(m, "[%zu]", i), n_sources = 0;
        if (!json_is_object(v))
            return bad(m, "expected a mapping");
        if (name == NULL || !json_is_string(name) ||
            !kube_dns1123_label_ok(json_string_value(name))) {
            field(m, "name");
            return bad(m, "required: a DNS-1123 label");
        }
        json_object_foreach((json_t *)v, k, x)
        {
            int ok = 0;
            if (strcmp(k, "name") == 0)
                continue;
            for (size_t s = 0; sources[s] != NULL && !ok; s++)
                ok = strcmp(k, sources[s]) == 0;
            if (strcmp(k, "hostPath") == 0) {
                field(m, "hostPath");
                return bad(m, "hostPath volumes are not allowed" PSS);
            }
            if (!ok) {
                if (kube_label_key_ok(k))
                    field(m, k);
                return bad(m, "this volume type is not allowed" PSS);
            }
            if (!json_is_object(x)) {
                field(m, k);
                return bad(m, "expected a mapping");
            }
            n_sources++;
        }
        if (n_sources != 1)
            return bad(m, "exactly one volume source is required");
        pop(m, o);
    }
    return BST_OK;
}

static enum bst_status check_service_account(struct mv *m, const json_t *v)
{
    if (!json_is_string(v))
        return bad(m, "expected a string");
    if (strcmp(json_string_value(v), "default") != 0)
        return bad(m, "only the namespace's default service account is allowed");
    return BST_OK;
}

static enum bst_status host_namespace(struct mv *m, const json_t *v)
{
    if (want_bool(m, v) != BST_OK)
        return BST_INVALID_ARGUMENT;
    return json_is_true(v) ? bad(m, "host namespaces are not allowed" PSS) : BST_OK;
}

static enum bst_status check_pod_spec(struct mv *m, const json_t *spec, int template)
{
    static const char *const allowed[] = {"containers",
                                          "initContainers",
                                          "volumes",
                                          "restartPolicy",
                                          "terminationGracePeriodSeconds",
                                          "activeDeadlineSeconds",
                                          "dnsPolicy",
                                          "dnsConfig",
                                          "nodeSelector",
                                          "serviceAccountName",
                                          "serviceAccount",
                                          "automountServiceAccountToken",
                                          "hostNetwork",
                                          "hostPID",
                                          "hostIPC",
                                          "shareProcessNamespace",
                                          "securityContext",
                                          "imagePullSecrets",
                                          "hostname",
                                          "subdomain",
                                          "affinity",
                                          "schedulerName",
                                          "tolerations",
                                          "hostAliases",
                                          "priorityClassName",
                                          "readinessGates",
                                          "runtimeClassName",
                                          "enableServiceLinks",
                                          "preemptionPolicy",
                                          "topologySpreadConstraints",
                                          "setHostnameAsFQDN",
                                          "os",
                                          "hostUsers",
                                          "schedulingGates",
                                          "nodeName",
                                          "ephemeralContainers",
                                          NULL};
    static const char *const always[] = {"Always", NULL};
    static const char *const policies[] = {"Always", "OnFailure", "Never", NULL};
    struct podsec ps = {0, 0};

    if (keys(m, spec, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    AT(m, spec, "nodeName", bad(m, "pods are placed by the scheduler; remove it"));
    AT(m, spec, "ephemeralContainers", bad(m, "cannot be set when a pod is created"));
    AT(m, spec, "hostNetwork", host_namespace(m, v_));
    AT(m, spec, "hostPID", host_namespace(m, v_));
    AT(m, spec, "hostIPC", host_namespace(m, v_));
    AT(m, spec, "serviceAccountName", check_service_account(m, v_));
    AT(m, spec, "serviceAccount", check_service_account(m, v_));
    AT(m, spec, "securityContext", check_pod_security(m, v_, &ps));
    AT(m, spec, "volumes", check_volumes(m, v_));
    AT(m, spec, "restartPolicy",
       template ? want_one_of(m, v_, always, "a deployment's pods must use Always")
                : want_one_of(m, v_, policies, "must be Always, OnFailure or Never"));
    AT(m, spec, "terminationGracePeriodSeconds", want_int(m, v_, 0, 3600));
    AT(m, spec, "nodeSelector", want_labels(m, v_));
    if (json_object_get(spec, "containers") == NULL) {
        size_t o = field(m, "containers");
        (void)o;
        return bad(m, "at least one container is required");
    }
    AT(m, spec, "containers", check_containers(m, v_, &ps, 1));
    AT(m, spec, "initContainers", check_containers(m, v_, &ps, 0));
    return BST_OK;
}

/* ---- kinds --------------------------------------------------------------------------------- */

static enum bst_status check_pod(struct mv *m, json_t *obj)
{
    static const char *const allowed[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    if (keys(m, obj, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    if (json_object_get(obj, "spec") == NULL) {
        field(m, "spec");
        return bad(m, "required");
    }
    AT(m, obj, "spec", check_pod_spec(m, v_, 0));
    return BST_OK;
}

static enum bst_status check_template(struct mv *m, const json_t *t, const json_t *selector)
{
    static const char *const allowed[] = {"metadata", "spec", NULL};
    static const char *const meta_allowed[] = {"labels", "annotations", NULL};
    const json_t *meta = json_object_get(t, "metadata"), *labels;
    const char *k;
    json_t *v;

    if (keys(m, t, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    if (meta != NULL) {
        size_t o = field(m, "metadata");
        if (keys(m, meta, meta_allowed) != BST_OK)
            return BST_INVALID_ARGUMENT;
        AT(m, meta, "labels", want_labels(m, v_));
        AT(m, meta, "annotations", want_annotations(m, v_));
        pop(m, o);
    }
    labels = meta != NULL ? json_object_get(meta, "labels") : NULL;
    json_object_foreach((json_t *)selector, k, v)
    {
        const json_t *have = labels != NULL ? json_object_get(labels, k) : NULL;
        if (have == NULL || !json_equal(have, v)) {
            field(m, "metadata");
            field(m, "labels");
            return bad(m, "`selector` does not match template `labels`");
        }
    }
    if (json_object_get(t, "spec") == NULL) {
        field(m, "spec");
        return bad(m, "required");
    }
    AT(m, t, "spec", check_pod_spec(m, v_, 1));
    return BST_OK;
}

static enum bst_status check_strategy(struct mv *m, const json_t *s)
{
    static const char *const allowed[] = {"type", "rollingUpdate", NULL};
    static const char *const types[] = {"RollingUpdate", "Recreate", NULL};
    static const char *const ru[] = {"maxSurge", "maxUnavailable", NULL};
    if (keys(m, s, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    AT(m, s, "type", want_one_of(m, v_, types, "must be RollingUpdate or Recreate"));
    AT(m, s, "rollingUpdate", keys(m, v_, ru));
    return BST_OK;
}

static enum bst_status check_deployment(struct mv *m, json_t *obj)
{
    static const char *const allowed[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    static const char *const spec_allowed[] = {"replicas",
                                               "selector",
                                               "template",
                                               "strategy",
                                               "minReadySeconds",
                                               "revisionHistoryLimit",
                                               "progressDeadlineSeconds",
                                               "paused",
                                               NULL};
    static const char *const sel_allowed[] = {"matchLabels", "matchExpressions", NULL};
    json_t *spec = json_object_get(obj, "spec");
    const json_t *sel, *ml;
    size_t o;

    if (keys(m, obj, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    o = field(m, "spec");
    if (spec == NULL)
        return bad(m, "required");
    if (keys(m, spec, spec_allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    AT(m, spec, "replicas", want_int(m, v_, m->lim->min_replicas, m->lim->max_replicas));
    AT(m, spec, "paused", bad(m, "not supported"));
    AT(m, spec, "revisionHistoryLimit", want_int(m, v_, 0, 100));
    AT(m, spec, "minReadySeconds", want_int(m, v_, 0, 3600));
    AT(m, spec, "progressDeadlineSeconds", want_int(m, v_, 1, 86400));
    AT(m, spec, "strategy", check_strategy(m, v_));
    sel = json_object_get(spec, "selector");
    if (sel == NULL) {
        field(m, "selector");
        return bad(m, "required");
    }
    {
        size_t o2 = field(m, "selector");
        if (keys(m, sel, sel_allowed) != BST_OK)
            return BST_INVALID_ARGUMENT;
        AT(m, sel, "matchExpressions", bad(m, "not supported; use matchLabels"));
        ml = json_object_get(sel, "matchLabels");
        if (ml == NULL || json_object_size(ml) == 0) {
            field(m, "matchLabels");
            return bad(m, "required: at least one label");
        }
        AT(m, sel, "matchLabels", want_labels(m, v_));
        pop(m, o2);
    }
    if (json_object_get(spec, "template") == NULL) {
        field(m, "template");
        return bad(m, "required");
    }
    AT(m, spec, "template", check_template(m, v_, ml));
    pop(m, o);
    return BST_OK;
}

static int ipv4_ok(const char *s)
{
    unsigned a, b, c, d;
    char tail;
    return sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a <= 255 && b <= 255 &&
           c <= 255 && d <= 255;
}

static enum bst_status check_cluster_ip(struct mv *m, const json_t *v)
{
    const char *s;
    unsigned a, b;
    if (want_string(m, v, 64) != BST_OK)
        return BST_INVALID_ARGUMENT;
    s = json_string_value(v);
    if (strcmp(s, "None") == 0 || s[0] == '\0')
        return BST_OK;
    if (!ipv4_ok(s) || sscanf(s, "%u.%u", &a, &b) != 2 || a != 10 || b < 96 || b > 111)
        return bad(m, "must be None or an address in the service range 10.96.0.0/12");
    return BST_OK;
}

static enum bst_status check_service_ports(struct mv *m, const json_t *ports, int node_ports)
{
    static const char *const allowed[] = {"name",     "protocol",    "port", "targetPort",
                                          "nodePort", "appProtocol", NULL};
    static const char *const protocols[] = {"TCP", "UDP", "SCTP", NULL};
    if (want_array(m, ports, 128) != BST_OK)
        return BST_INVALID_ARGUMENT;
    if (json_array_size(ports) == 0)
        return bad(m, "at least one port is required");
    for (size_t i = 0; i < json_array_size(ports); i++) {
        const json_t *p = json_array_get(ports, i), *tp;
        size_t o = push(m, "[%zu]", i);
        if (keys(m, p, allowed) != BST_OK)
            return BST_INVALID_ARGUMENT;
        if (json_object_get(p, "port") == NULL) {
            field(m, "port");
            return bad(m, "required");
        }
        AT(m, p, "port", want_int(m, v_, 1, 65535));
        AT(m, p, "protocol", want_one_of(m, v_, protocols, "must be TCP, UDP or SCTP"));
        if (json_array_size(ports) > 1 && json_object_get(p, "name") == NULL) {
            field(m, "name");
            return bad(m, "required when a service has several ports");
        }
        AT(m, p, "name",
           json_is_string(v_) && kube_dns1123_label_ok(json_string_value(v_))
               ? BST_OK
               : bad(m, "must be a DNS-1123 label"));
        tp = json_object_get(p, "targetPort");
        if (tp != NULL) {
            size_t o2 = field(m, "targetPort");
            if (json_is_integer(tp)) {
                if (want_int(m, tp, 1, 65535) != BST_OK)
                    return BST_INVALID_ARGUMENT;
            } else if (!json_is_string(tp) || json_string_length(tp) > 15 ||
                       !kube_dns1123_label_ok(json_string_value(tp))) {
                return bad(m, "must be a port number or a container port name");
            }
            pop(m, o2);
        }
        AT(m, p, "nodePort",
           node_ports ? want_int(m, v_, 30000, 32767)
                      : bad(m, "only NodePort and LoadBalancer services have node ports"));
        pop(m, o);
    }
    return BST_OK;
}

static enum bst_status check_service(struct mv *m, json_t *obj)
{
    static const char *const allowed[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    static const char *const spec_allowed[] = {"type",
                                               "ports",
                                               "selector",
                                               "clusterIP",
                                               "clusterIPs",
                                               "sessionAffinity",
                                               "ipFamilies",
                                               "ipFamilyPolicy",
                                               "internalTrafficPolicy",
                                               "externalTrafficPolicy",
                                               "publishNotReadyAddresses",
                                               "externalIPs",
                                               "externalName",
                                               NULL};
    static const char *const types[] = {"ClusterIP", "NodePort", "LoadBalancer", NULL};
    static const char *const affinity[] = {"None", "ClientIP", NULL};
    json_t *spec = json_object_get(obj, "spec");
    const json_t *type;
    int node_ports;
    size_t o;

    if (keys(m, obj, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    o = field(m, "spec");
    if (spec == NULL)
        return bad(m, "required");
    if (keys(m, spec, spec_allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    AT(m, spec, "externalIPs",
       bad(m, "not allowed: external IPs let a service capture other traffic (CVE-2020-8554)"));
    AT(m, spec, "externalName", bad(m, "ExternalName services are not supported"));
    AT(m, spec, "type", want_one_of(m, v_, types, "must be ClusterIP, NodePort or LoadBalancer"));
    type = json_object_get(spec, "type");
    node_ports = type != NULL && strcmp(json_string_value(type), "ClusterIP") != 0;
    AT(m, spec, "clusterIP", check_cluster_ip(m, v_));
    AT(m, spec, "clusterIPs", want_array(m, v_, 2));
    AT(m, spec, "sessionAffinity", want_one_of(m, v_, affinity, "must be None or ClientIP"));
    AT(m, spec, "selector", want_labels(m, v_));
    if (json_object_get(spec, "ports") == NULL) {
        field(m, "ports");
        return bad(m, "at least one port is required");
    }
    AT(m, spec, "ports", check_service_ports(m, v_, node_ports));
    pop(m, o);
    return BST_OK;
}

static enum bst_status check_configmap(struct mv *m, json_t *obj)
{
    static const char *const allowed[] = {"apiVersion", "kind",       "metadata", "data",
                                          "immutable",  "binaryData", NULL};
    const json_t *data = json_object_get(obj, "data");
    size_t total = 0;

    if (keys(m, obj, allowed) != BST_OK)
        return BST_INVALID_ARGUMENT;
    AT(m, obj, "binaryData", bad(m, "not supported; use data"));
    AT(m, obj, "immutable", want_bool(m, v_));
    if (data != NULL) {
        const char *k;
        json_t *v;
        size_t o = field(m, "data");
        if (!json_is_object(data))
            return bad(m, "expected a mapping of keys to strings");
        json_object_foreach((json_t *)data, k, v)
        {
            if (!kube_config_key_ok(k))
                return bad(m, "invalid key: 1-253 of A-Z, a-z, 0-9, '-', '_', '.'");
            if (!json_is_string(v)) {
                field(m, k);
                return bad(m, "expected a string");
            }
            total += strlen(k) + json_string_length(v);
        }
        if (total > 1024 * 1024)
            return bad(m, "larger than 1 MiB in total");
        pop(m, o);
    }
    return BST_OK;
}

/* ---- entry --------------------------------------------------------------------------------- */

struct kind_rule {
    const char *kind, *api_version;
    enum kube_kind k;
    int (*name_ok)(const char *);
    const char *name_rule;
    enum bst_status (*check)(struct mv *m, json_t *obj);
};

static const struct kind_rule rules[] = {
    {"Pod", "v1", KUBE_KIND_POD, kube_dns1123_subdomain_ok, "a DNS-1123 subdomain", check_pod},
    {"Deployment", "apps/v1", KUBE_KIND_DEPLOYMENT, kube_dns1123_subdomain_ok,
     "a DNS-1123 subdomain", check_deployment},
    {"Service", "v1", KUBE_KIND_SERVICE, kube_dns1035_label_ok,
     "a DNS-1035 label (1-63 of a-z, 0-9, '-', starting with a letter)", check_service},
    {"ConfigMap", "v1", KUBE_KIND_CONFIGMAP, kube_dns1123_subdomain_ok, "a DNS-1123 subdomain",
     check_configmap},
};

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

enum bst_status kube_manifest_parse(const char *text, size_t len, const char *ns,
                                    const struct kube_manifest_limits *lim, enum kube_kind *kind,
                                    json_t **obj, struct bst_err *err)
{
    static const struct kube_manifest_limits def = {0, 100};
    struct mv m;
    json_t *root = NULL, *jk, *jv;
    const struct kind_rule *r = NULL;
    enum bst_status rv;
    size_t i = 0;

    *obj = NULL;
    memset(&m, 0, sizeof(m));
    m.err = err;
    m.lim = lim != NULL ? lim : &def;
    if (len > KUBE_MANIFEST_MAX_BYTES)
        return bst_errf(err, BST_INVALID_ARGUMENT, "manifest: larger than %d bytes",
                        KUBE_MANIFEST_MAX_BYTES);
    if (memchr(text, '\0', len) != NULL || !bst_utf8_valid(text, len))
        return bst_errf(err, BST_INVALID_ARGUMENT, "manifest: not UTF-8 text");
    while (i < len && blank(text[i]))
        i++;
    if (i == len)
        return bst_errf(err, BST_INVALID_ARGUMENT, "manifest: empty");
    if (text[i] == '{') {
        json_error_t je;
        root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (root == NULL)
            return bst_errf(err, BST_INVALID_ARGUMENT,
                            "manifest: invalid JSON at line %d column %d", je.line, je.column);
    } else {
        struct bst_yaml_limits yl;
        struct bst_yaml_doc *doc;
        bst_yaml_limits_default(&yl);
        yl.max_bytes = KUBE_MANIFEST_MAX_BYTES;
        if ((rv = bst_yaml_parse("manifest", text, len, &yl, &doc, err)) != BST_OK)
            return rv;
        rv = yaml_to_json(doc, doc->root, &root, err);
        bst_yaml_free(doc);
        if (rv != BST_OK)
            return rv;
    }
    if (!json_is_object(root)) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "manifest: expected one object (a mapping)");
        goto fail;
    }
    jk = json_object_get(root, "kind");
    jv = json_object_get(root, "apiVersion");
    if (!json_is_string(jk)) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "kind: required");
        goto fail;
    }
    for (size_t k = 0; k < sizeof(rules) / sizeof(rules[0]); k++)
        if (strcmp(json_string_value(jk), rules[k].kind) == 0)
            r = &rules[k];
    if (r == NULL) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT,
                      "kind: only Pod, Deployment, Service and ConfigMap can be created here "
                      "(secrets: use create_secret)");
        goto fail;
    }
    if (!json_is_string(jv) || strcmp(json_string_value(jv), r->api_version) != 0) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "apiVersion: a %s is %s", r->kind, r->api_version);
        goto fail;
    }
    if (json_object_get(root, "status") != NULL) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "status: set by the cluster; remove it");
        goto fail;
    }
    field(&m, "metadata");
    if (json_object_get(root, "metadata") == NULL) {
        rv = bad(&m, "required");
        goto fail;
    }
    if ((rv = check_metadata(&m, json_object_get(root, "metadata"), ns, r->name_ok,
                             r->name_rule)) != BST_OK)
        goto fail;
    pop(&m, 0);
    if ((rv = r->check(&m, root)) != BST_OK)
        goto fail;
    *kind = r->k;
    *obj = root;
    return BST_OK;
fail:
    json_decref(root);
    return rv;
}
