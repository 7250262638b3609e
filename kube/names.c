/* Kubernetes name rules (k8s.io/apimachinery/pkg/util/validation), without regular expressions
 * so that no input can make them slow. */
#include "names.h"

#include <string.h>

static int lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int alnum(char c)
{
    return lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static int label_n(const char *s, size_t n)
{
    if (n == 0 || n > 63 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!lower_alnum(s[i]) && s[i] != '-')
            return 0;
    return 1;
}

int kube_dns1123_label_ok(const char *s)
{
    return label_n(s, strlen(s));
}

static int subdomain_n(const char *s, size_t n)
{
    size_t start = 0;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (!label_n(s + start, i - start))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

int kube_dns1123_subdomain_ok(const char *s)
{
    return subdomain_n(s, strlen(s));
}

int kube_dns1035_label_ok(const char *s)
{
    return s[0] >= 'a' && s[0] <= 'z' && kube_dns1123_label_ok(s);
}

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 bytes. */
static int qualified_part(const char *s, size_t n)
{
    if (n == 0 || n > 63 || !alnum(s[0]) || !alnum(s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

int kube_label_key_okn(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    if (memchr(s, '\0', n) != NULL)
        return 0;
    if (slash == NULL)
        return qualified_part(s, n);
    return subdomain_n(s, (size_t)(slash - s)) &&
           qualified_part(slash + 1, n - (size_t)(slash - s) - 1);
}

int kube_label_key_ok(const char *s)
{
    return kube_label_key_okn(s, strlen(s));
}

int kube_label_value_okn(const char *s, size_t n)
{
    return n == 0 || (memchr(s, '\0', n) == NULL && qualified_part(s, n));
}

int kube_label_value_ok(const char *s)
{
    return kube_label_value_okn(s, strlen(s));
}

int kube_config_key_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}
