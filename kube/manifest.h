/* Manifests for create_resource: one Kubernetes object as YAML or JSON, from a peer, checked
 * before anything reaches a cluster.
 *
 * YAML goes through the strict reader (no anchors, aliases, tags, duplicate keys or YAML 1.1
 * booleans), JSON through jansson with duplicate keys refused; both become the same JSON tree.
 * Only Pod (v1), Deployment (apps/v1), Service (v1) and ConfigMap (v1) are accepted, with the
 * fields Kubernetes defines for them at the levels checked here (unknown fields are refused, as
 * the API server's strict field validation does). metadata.name must be a valid name for the
 * kind and metadata.namespace, when given, must equal the namespace argument. Pods and
 * deployment pod templates must pass the Pod Security Standards "restricted" profile: no
 * privileged containers, host namespaces, host ports, hostPath or other non-restricted volume
 * types, added capabilities beyond NET_BIND_SERVICE, privilege escalation (it must be set to
 * false), root (runAsNonRoot must be true, runAsUser not 0), unconfined seccomp (RuntimeDefault
 * or Localhost must be set), unsafe sysctls, custom SELinux users/roles, non-default /proc
 * mounts, Windows host processes; and no service account other than the namespace's default.
 * Services may not set externalIPs (CVE-2020-8554) or be ExternalName.
 *
 * Every refusal is BST_INVALID_ARGUMENT naming the field path
 * ("spec.containers[0].securityContext.privileged: ..."); no refusal quotes a value from the
 * manifest, which may carry secrets (env values, config data). */
#ifndef BASTION_KUBE_MANIFEST_H
#define BASTION_KUBE_MANIFEST_H

#include "backend.h"
#include "status.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define KUBE_MANIFEST_MAX_BYTES (256 * 1024)

struct kube_manifest_limits {
    int32_t min_replicas; /* bounds of a Deployment's spec.replicas */
    int32_t max_replicas;
};

/* Parses and checks text[0..len) as the manifest of one object for namespace ns (a DNS-1123
 * label). On success *kind is its kind and *obj (owned by the caller, json_decref) its JSON
 * form with metadata.namespace set to ns. lim may be NULL (replicas 0..100). Returns BST_OK,
 * BST_INVALID_ARGUMENT (err names the field, or the YAML position) or BST_RESOURCE_EXHAUSTED. */
enum bst_status kube_manifest_parse(const char *text, size_t len, const char *ns,
                                    const struct kube_manifest_limits *lim, enum kube_kind *kind,
                                    json_t **obj, struct bst_err *err);

#endif
