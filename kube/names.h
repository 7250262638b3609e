/* Kubernetes name rules, checked exactly as the API server does: DNS-1123 labels (namespaces,
 * most names), DNS-1123 subdomains (pods, config maps, secrets, deployments), DNS-1035 labels
 * (services), qualified names for label keys, label values, and config/secret keys. Every
 * function takes a NUL-terminated string and returns 1 when it is valid, else 0; nothing here
 * allocates, so they are safe on peer input of any length. */
#ifndef BASTION_KUBE_NAMES_H
#define BASTION_KUBE_NAMES_H

#include <stddef.h>

/* 1 to 63 of [a-z0-9-], alphanumeric at both ends (namespaces, most object names). */
int kube_dns1123_label_ok(const char *s);

/* 1 to 253 bytes of DNS-1123 labels joined by '.' (pods, deployments, secrets, config maps). */
int kube_dns1123_subdomain_ok(const char *s);

/* A DNS-1123 label that starts with a letter (services). */
int kube_dns1035_label_ok(const char *s);

/* A label or annotation key: an optional DNS-1123 subdomain prefix and '/', then a name of 1 to
 * 63 of [A-Za-z0-9-_.], alphanumeric at both ends. */
int kube_label_key_ok(const char *s);

/* A label value: empty, or 1 to 63 of [A-Za-z0-9-_.], alphanumeric at both ends. */
int kube_label_value_ok(const char *s);

/* A key of a config map or secret: 1 to 253 of [-._a-zA-Z0-9], not "." or "..". */
int kube_config_key_ok(const char *s);

/* The same rules, with the length of what is checked; for text that is not NUL-terminated. */
int kube_label_key_okn(const char *s, size_t n);
int kube_label_value_okn(const char *s, size_t n);

#endif
