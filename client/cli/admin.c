/* The offline administration commands of `bastion`: they call no server, they make what an
 * operator pastes into the server's files.
 *
 *   keys generate --id ID   a new API key (shown once) and its entry for the API keys file
 *   keys jwks --config FILE the public half of auth.token.signing_key as a JWKS (rotation)
 *   users hash              the scrypt hash of a password for the users file
 *
 * The work is done by the authentication library (auth/authn.h), so the CLI writes exactly
 * what the server reads. Secrets (the new key, the password) are wiped once printed or used. */
#include "cli.h"

#include "authn.h"
#include "strict_yaml.h"

#include <openssl/crypto.h>

#include <stdlib.h>
#include <string.h>

/* The sha256 value of an entry made by authn_apikey_generate (for -o json). */
static int entry_sha256(const char *entry, char *hex, size_t len)
{
    const char *p = strstr(entry, "sha256: \"");
    size_t n = 0;
    if (p == NULL)
        return -1;
    p += 9;
    while (p[n] != '\0' && p[n] != '"')
        n++;
    if (p[n] != '"' || n + 1 > len)
        return -1;
    memcpy(hex, p, n);
    hex[n] = '\0';
    return 0;
}

int cli_cmd_keys_generate(struct cli *cli)
{
    char key[AUTHN_APIKEY_LEN + 1], entry[1024], hex[80];
    enum bst_status st;
    int rc = EXIT_OK;

    if (cli->id == NULL)
        return cli_usage_error(
            "keys generate needs --id ID (1-32 characters of A-Z a-z 0-9 . _ -)");
    st = authn_apikey_generate(key, sizeof(key), entry, sizeof(entry), cli->id);
    if (st == BST_INVALID_ARGUMENT)
        return cli_usage_error("--id: '%s' is not 1-32 characters of A-Z a-z 0-9 . _ -", cli->id);
    if (st != BST_OK) {
        fprintf(stderr, "%s: cannot make a key (no randomness?)\n", bst_status_name(st));
        return EXIT_SERVER;
    }
    if (cli->output == CLI_OUT_JSON) {
        json_t *j;
        char *s;
        if (entry_sha256(entry, hex, sizeof(hex)) != 0) {
            rc = EXIT_SERVER;
            goto out;
        }
        j = json_pack("{s:s,s:s,s:s,s:s}", "id", cli->id, "key", key, "sha256", hex, "entry",
                      entry);
        s = j != NULL ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (s == NULL) {
            rc = EXIT_SERVER;
            goto out;
        }
        puts(s);
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    } else {
        printf("New API key \"%s\". It is shown only now: Bastion keeps only its SHA-256.\n"
               "Give it to its client now (for example as BASTION_API_KEY):\n\n"
               "    %s\n\n"
               "Paste this entry under `keys:` in the API keys file (auth.api_keys, mode 0600),\n"
               "set its identity and groups, then send bastiond SIGHUP:\n\n%s",
               cli->id, key, entry);
    }
    fflush(stdout);
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int cli_cmd_keys_jwks(struct cli *cli)
{
    struct authn_config cfg;
    struct bst_yaml_doc *doc = NULL;
    struct bst_err err = {BST_OK, ""};
    char out[8192];
    enum bst_status st;
    int rc = EXIT_USAGE;

    if (cli->config == NULL)
        return cli_usage_error("keys jwks needs --config FILE (the server's bastion.yaml)");
    memset(&cfg, 0, sizeof(cfg));
    /* Only the `auth:` section is read (through the same field table as the server); the
     * server checks the rest of its file itself. */
    st = bst_yaml_load_file(cli->config, NULL, &doc, &err);
    if (st == BST_OK)
        st = bst_yaml_decode(doc, bst_yaml_get(doc->root, "auth"), authn_config_fields, &cfg, &err);
    if (st == BST_OK)
        st = authn_config_resolve_paths(&cfg, cli->config);
    if (st == BST_OK)
        st = authn_signing_jwks(&cfg, out, sizeof(out), &err);
    if (st != BST_OK) {
        fprintf(stderr, "%s: %s\n", bst_status_name(st),
                err.msg[0] ? err.msg : "cannot read the configuration");
        /* A missing, unreadable or incomplete local file is a usage error, as for --ca. */
        rc = st == BST_INTERNAL || st == BST_RESOURCE_EXHAUSTED ? EXIT_SERVER : EXIT_USAGE;
        goto out;
    }
    puts(out);
    rc = EXIT_OK;
out:
    bst_yaml_decoded_free(authn_config_fields, &cfg);
    bst_yaml_free(doc);
    return rc;
}

int cli_cmd_users_hash(struct cli *cli)
{
    char pw[CLI_PASSWORD_MAX + 2], again[CLI_PASSWORD_MAX + 2], hash[256], why[160];
    enum bst_status st;
    int rc = EXIT_USAGE;

    if (cli_read_password(cli->password_stdin, "Password: ", pw, sizeof(pw), why, sizeof(why)) !=
        0) {
        rc = cli_usage_error("users hash: %s", why);
        goto out;
    }
    /* Typed blind, so typed twice; a password piped in is taken as it is. */
    if (!cli->password_stdin) {
        if (cli_read_password(0, "Again: ", again, sizeof(again), why, sizeof(why)) != 0) {
            rc = cli_usage_error("users hash: %s", why);
            goto out;
        }
        if (strcmp(pw, again) != 0) {
            rc = cli_usage_error("users hash: the two passwords differ");
            goto out;
        }
    }
    st = authn_password_hash(pw, hash, sizeof(hash));
    if (st != BST_OK) {
        fprintf(stderr, "%s: cannot hash the password\n", bst_status_name(st));
        rc = st == BST_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_SERVER;
        goto out;
    }
    if (cli->output == CLI_OUT_JSON)
        rc = cli_print_json(json_pack("{s:s}", "password_hash", hash));
    else
        rc = printf("%s\n", hash) < 0 ? EXIT_SERVER : EXIT_OK;
out:
    OPENSSL_cleanse(pw, sizeof(pw));
    OPENSSL_cleanse(again, sizeof(again));
    return rc;
}
