/* Tests for kube/manifest.c: create_resource manifests in YAML and JSON, the kinds accepted, the
 * metadata rules, the Pod Security Standards "restricted" profile, service and config map
 * rules. Every refusal must name the field and never quote a value from the manifest. */
#include "manifest.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A restricted-compliant deployment; tests change one thing at a time with %s slots. */
static const char deploy_fmt[] = "apiVersion: apps/v1\n"
                                 "kind: Deployment\n"
                                 "metadata:\n"
                                 "  name: shop\n"
                                 "  labels: {app: shop}\n"
                                 "spec:\n"
                                 "  replicas: 2\n"
                                 "  selector:\n"
                                 "    matchLabels: {app: shop}\n"
                                 "  template:\n"
                                 "    metadata:\n"
                                 "      labels: {app: shop}\n"
                                 "    spec:\n"
                                 "%s"
                                 "      securityContext:\n"
                                 "        runAsNonRoot: true\n"
                                 "        seccompProfile: {type: RuntimeDefault}\n"
                                 "      containers:\n"
                                 "        - name: shop\n"
                                 "          image: ghcr.io/acme/shop:1.0\n"
                                 "          env: [{name: API_TOKEN, value: CANARY-token}]\n"
                                 "          ports: [{containerPort: 8080, name: http}]\n"
                                 "          securityContext:\n"
                                 "            allowPrivilegeEscalation: false\n"
                                 "            capabilities: {drop: [ALL]%s}\n"
                                 "%s";

static enum bst_status parse(const char *text, enum kube_kind *kind, json_t **obj,
                             struct bst_err *err)
{
    struct kube_manifest_limits lim = {0, 10};
    return kube_manifest_parse(text, strlen(text), "default", &lim, kind, obj, err);
}

static void accepted(const char *text, enum kube_kind want)
{
    enum kube_kind kind;
    json_t *obj = NULL;
    struct bst_err err = {BST_OK, ""};
    ck_assert_msg(parse(text, &kind, &obj, &err) == BST_OK, "refused: %s\n%s", err.msg, text);
    ck_assert_int_eq(kind, want);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace")),
        "default");
    json_decref(obj);
}

static void refused(const char *text, const char *want)
{
    enum kube_kind kind;
    json_t *obj = NULL;
    struct bst_err err = {BST_OK, ""};
    ck_assert_msg(parse(text, &kind, &obj, &err) == BST_INVALID_ARGUMENT, "accepted:\n%s", text);
    ck_assert_ptr_null(obj);
    ck_assert_msg(strstr(err.msg, want) != NULL, "'%s' not in '%s'", want, err.msg);
    ck_assert_msg(strstr(err.msg, "CANARY") == NULL, "a value was echoed: %s", err.msg);
}

static char *deploy(const char *pod_extra, const char *caps_extra, const char *container_extra)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf), deploy_fmt, pod_extra, caps_extra, container_extra);
    return buf;
}

#define C "            " /* indentation of a container's securityContext member */
#define K "          "   /* indentation of a container member */
#define P "      "       /* indentation of a pod spec member */

START_TEST(test_manifest_accepts_restricted_workloads_in_yaml_and_json)
{
    accepted(deploy("", "", ""), KUBE_KIND_DEPLOYMENT);
    accepted(deploy("", ", add: [NET_BIND_SERVICE]", ""), KUBE_KIND_DEPLOYMENT);
    accepted(deploy(P "volumes: [{name: cfg, configMap: {name: shop}}]\n", "",
                    K "volumeMounts: [{name: cfg, mountPath: /etc/shop}]\n"),
             KUBE_KIND_DEPLOYMENT);
    accepted("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
             "\"namespace\":\"default\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\","
             "\"securityContext\":{\"allowPrivilegeEscalation\":false,\"runAsNonRoot\":true,"
             "\"capabilities\":{\"drop\":[\"ALL\"]},\"seccompProfile\":{\"type\":\"Localhost\","
             "\"localhostProfile\":\"p.json\"}}}]}}",
             KUBE_KIND_POD);
    accepted("apiVersion: v1\nkind: Service\nmetadata: {name: shop}\nspec:\n  type: NodePort\n"
             "  selector: {app: shop}\n  ports:\n"
             "    - {name: http, port: 80, targetPort: http, nodePort: 30080}\n"
             "    - {name: https, port: 443, targetPort: 8443}\n",
             KUBE_KIND_SERVICE);
    accepted("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop-config}\n"
             "data: {LOG_LEVEL: debug, app.yaml: \"a: 1\\n\"}\n",
             KUBE_KIND_CONFIGMAP);
}
END_TEST

START_TEST(test_manifest_refuses_other_kinds_versions_and_shapes)
{
    refused("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", "kind: only Pod");
    refused("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
            "metadata: {name: x}\n",
            "kind: only Pod");
    refused("apiVersion: v1\nkind: Deployment\nmetadata: {name: x}\n", "apiVersion: a Deployment "
                                                                       "is apps/v1");
    refused("- a\n- b\n", "one object");
    refused("", "empty");
    refused("{\"kind\":\"Pod\",\"kind\":\"Pod\"}", "invalid JSON");
    refused("a: &x 1\nb: *x\n", "manifest:1:4");
    refused("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n"
            "status: {phase: Running}\n",
            "status: set by the cluster");
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: yes}\n", "YAML 1.1");
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nbogus: 1\n", "bogus: unknown");
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: 1}\n",
            "data.a: expected a string");
}
END_TEST

START_TEST(test_manifest_checks_metadata_and_the_namespace_argument)
{
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n",
            "metadata.name: must be a DNS-1123 subdomain");
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: default}\n",
            "metadata.name: required");
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: production}\n",
            "metadata.namespace: must equal the namespace argument \"default\"");
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: c-}\n",
            "metadata.generateName");
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, uid: x}\n",
            "metadata.uid: set by the cluster");
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  ownerReferences: []\n",
            "metadata.ownerReferences");
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {app: \"-x\"}}\n",
            "metadata.labels.app: invalid label value");
    refused("apiVersion: v1\nkind: Service\nmetadata: {name: 1web}\nspec: {ports: [{port: 80}]}\n",
            "metadata.name: must be a DNS-1035 label");
}
END_TEST

START_TEST(test_manifest_enforces_the_restricted_pod_security_standard)
{
    refused(deploy(P "hostNetwork: true\n", "", ""),
            "spec.template.spec.hostNetwork: host namespaces are not allowed");
    refused(deploy(P "hostPID: true\n", "", ""), "spec.template.spec.hostPID");
    refused(deploy(P "hostIPC: true\n", "", ""), "spec.template.spec.hostIPC");
    refused(deploy(P "volumes: [{name: root, hostPath: {path: /}}]\n", "", ""),
            "spec.template.spec.volumes[0].hostPath: hostPath volumes are not allowed");
    refused(deploy(P "volumes: [{name: data, nfs: {server: nas, path: /}}]\n", "", ""),
            "spec.template.spec.volumes[0].nfs: this volume type is not allowed");
    refused(deploy("", "", C "privileged: true\n"),
            "spec.template.spec.containers[0].securityContext.privileged: privileged containers");
    refused(deploy("", ", add: [SYS_ADMIN]", ""),
            "containers[0].securityContext.capabilities.add[0]: adding capabilities");
    refused(deploy("", "", C "runAsUser: 0\n"),
            "containers[0].securityContext.runAsUser: running as root");
    refused(deploy("", "", C "runAsNonRoot: false\n"),
            "containers[0].securityContext.runAsNonRoot: must be true");
    refused(deploy("", "", C "procMount: Unmasked\n"), "securityContext.procMount");
    refused(deploy("", "", C "seccompProfile: {type: Unconfined}\n"),
            "securityContext.seccompProfile.type: must be RuntimeDefault or Localhost");
    refused(deploy("", "", C "seLinuxOptions: {user: root}\n"),
            "securityContext.seLinuxOptions.user");
    refused(deploy("", "", C "windowsOptions: {hostProcess: true}\n"), "hostProcess");
    refused(deploy(P "serviceAccountName: cluster-admin-sa\n", "", ""),
            "spec.template.spec.serviceAccountName: only the namespace's default");
    refused(deploy(P "nodeName: worker-1\n", "", ""), "spec.template.spec.nodeName");
    refused(deploy("", "", "          stdin: true\n        - name: two\n          image: i\n"),
            "containers[1].securityContext.allowPrivilegeEscalation: must be set to false");
}
END_TEST

START_TEST(test_manifest_pod_security_applies_to_bare_pods_and_needs_explicit_settings)
{
    static const char pod_fmt[] = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
                                  "%s  containers:\n  - name: c\n    image: busybox\n%s";
    char buf[2048];
#define POD(spec, container) (snprintf(buf, sizeof(buf), pod_fmt, spec, container), buf)
    refused(POD("", ""),
            "spec.containers[0].securityContext.allowPrivilegeEscalation: must be set to false");
    refused(POD("", "    securityContext: {allowPrivilegeEscalation: false}\n"),
            "spec.containers[0].securityContext.capabilities.drop: must include ALL");
    refused(POD("", "    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: "
                    "[NET_RAW]}}\n"),
            "capabilities.drop: must include ALL");
    refused(POD("", "    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: "
                    "[ALL]}}\n"),
            "spec.containers[0].securityContext.runAsNonRoot: must be true");
    refused(POD("", "    securityContext: {allowPrivilegeEscalation: false, runAsNonRoot: true, "
                    "capabilities: {drop: [ALL]}}\n"),
            "spec.containers[0].securityContext.seccompProfile: must be RuntimeDefault");
    /* Pod-level runAsNonRoot and seccomp cover the containers. */
    accepted(POD("  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: "
                 "RuntimeDefault}, sysctls: [{name: net.ipv4.tcp_syncookies, value: \"1\"}]}\n",
                 "    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: "
                 "[ALL]}}\n"),
             KUBE_KIND_POD);
    refused(POD("  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}, "
                "sysctls: [{name: kernel.msgmax, value: \"1\"}]}\n",
                "    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: "
                "[ALL]}}\n"),
            "spec.securityContext.sysctls[0].name: only the safe sysctls");
    refused(POD("  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n",
                "    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: "
                "[ALL]}}\n    ports: [{containerPort: 80, hostPort: 8080}]\n"),
            "spec.containers[0].ports[0].hostPort: host ports are not allowed");
#undef POD
}
END_TEST

static const char tmpl[] = "  template:\n    metadata: {labels: {app: a}}\n    spec:\n"
                           "      securityContext: {runAsNonRoot: true, seccompProfile: {type: "
                           "RuntimeDefault}}\n"
                           "      containers:\n      - name: c\n        image: i\n"
                           "        securityContext: {allowPrivilegeEscalation: false, "
                           "capabilities: {drop: [ALL]}}\n";

static char *dep(const char *spec, const char *tail)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf),
             "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n%s%s", spec, tail);
    return buf;
}

static char *svc(const char *spec)
{
    static char buf[2048];
    snprintf(buf, sizeof(buf), "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n%s",
             spec);
    return buf;
}

START_TEST(test_manifest_checks_deployments_services_and_config_maps)
{
    accepted(dep("  replicas: 10\n  selector: {matchLabels: {app: a}}\n", tmpl),
             KUBE_KIND_DEPLOYMENT);
    refused(dep("  replicas: 11\n  selector: {matchLabels: {app: a}}\n", tmpl),
            "spec.replicas: must be between 0 and 10");
    refused(dep("  replicas: -1\n  selector: {matchLabels: {app: a}}\n", tmpl),
            "spec.replicas: must be between 0 and 10");
    refused(dep("  selector: {matchLabels: {app: b}}\n", tmpl),
            "spec.template.metadata.labels: `selector` does not match template `labels`");
    refused(dep("  selector: {matchExpressions: [{key: app, operator: In, values: [a]}]}\n", tmpl),
            "spec.selector.matchExpressions: not supported");
    refused(dep("  selector: {matchLabels: {app: a}}\n", ""), "spec.template: required");
    refused(dep("  selector: {matchLabels: {app: a}}\n  paused: true\n", tmpl),
            "spec.paused: not supported");
    refused(dep("  selector: {matchLabels: {app: a}}\n  strategy: {type: Blue}\n", tmpl),
            "spec.strategy.type: must be RollingUpdate or Recreate");
    refused(dep("  selector: {matchLabels: {app: a}}\n",
                "  template:\n    metadata: {labels: {app: a}}\n    spec:\n"
                "      restartPolicy: Never\n      containers: [{name: c, image: i}]\n"),
            "spec.template.spec.restartPolicy: a deployment's pods must use Always");
    refused(svc("  externalIPs: [1.2.3.4]\n  ports: [{port: 80}]\n"),
            "spec.externalIPs: not allowed");
    refused(svc("  type: ExternalName\n  ports: [{port: 80}]\n"),
            "spec.type: must be ClusterIP, NodePort or LoadBalancer");
    refused(svc("  ports: [{port: 80, nodePort: 30080}]\n"),
            "spec.ports[0].nodePort: only NodePort and LoadBalancer services");
    refused(svc("  type: NodePort\n  ports: [{port: 80, nodePort: 80}]\n"),
            "spec.ports[0].nodePort: must be between 30000 and 32767");
    refused(svc("  selector: {app: a}\n"), "spec.ports: at least one port");
    refused(svc("  ports: [{port: 70000}]\n"), "spec.ports[0].port: must be between 1 and 65535");
    refused(svc("  ports: [{port: 80}, {port: 81}]\n"),
            "spec.ports[0].name: required when a service has several ports");
    refused(svc("  clusterIP: 8.8.8.8\n  ports: [{port: 80}]\n"),
            "spec.clusterIP: must be None or an address in the service range");
    accepted(svc("  clusterIP: None\n  ports: [{port: 80}]\n"), KUBE_KIND_SERVICE);
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nbinaryData: {a: AA==}\n",
            "binaryData: not supported");
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {\"a/b\": x}\n",
            "data: invalid key");
}
END_TEST

START_TEST(test_manifest_refuses_oversized_and_non_utf8_input)
{
    enum kube_kind kind;
    json_t *obj = NULL;
    struct bst_err err;
    size_t n = KUBE_MANIFEST_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    ck_assert_int_eq(kube_manifest_parse(big, n, "default", NULL, &kind, &obj, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "larger than"));
    free(big);
    ck_assert_int_eq(kube_manifest_parse("a: \xff\n", 6, "default", NULL, &kind, &obj, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_int_eq(kube_manifest_parse("a: b\0c", 6, "default", NULL, &kind, &obj, &err),
                     BST_INVALID_ARGUMENT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manifest");
    TCase *tc = tcase_create("manifest");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_manifest_accepts_restricted_workloads_in_yaml_and_json);
    tcase_add_test(tc, test_manifest_refuses_other_kinds_versions_and_shapes);
    tcase_add_test(tc, test_manifest_checks_metadata_and_the_namespace_argument);
    tcase_add_test(tc, test_manifest_enforces_the_restricted_pod_security_standard);
    tcase_add_test(tc, test_manifest_pod_security_applies_to_bare_pods_and_needs_explicit_settings);
    tcase_add_test(tc, test_manifest_checks_deployments_services_and_config_maps);
    tcase_add_test(tc, test_manifest_refuses_oversized_and_non_utf8_input);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
