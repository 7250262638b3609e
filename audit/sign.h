/* Ed25519 checkpoint signatures: the writer's signing key (a secret file) and the verifier's set
 * of public keys (a directory of PEM files, old keys included, so rotated keys keep verifying).
 * Signing and verification use OpenSSL's one-shot EVP_DigestSign / EVP_DigestVerify. */
#ifndef BASTION_AUDIT_SIGN_H
#define BASTION_AUDIT_SIGN_H

#include "format.h"
#include "status.h"

#include <stddef.h>
#include <stdint.h>

#define AUDIT_SIG_LEN 64
#define AUDIT_KEY_ID_MAX 64
#define AUDIT_PUBKEY_LEN 32

struct audit_signer {
    void *pkey;                        /* EVP_PKEY */
    char key_id[AUDIT_KEY_ID_MAX + 1]; /* configured, or "ed25519-" + 16 hex of SHA-256(pub) */
    int key_id_derived;                /* 1 when key_id was derived from the key */
    unsigned char pub[AUDIT_PUBKEY_LEN];
};

/* Returns 1 if id is a usable key id: 1..64 characters of [A-Za-z0-9._-], not starting with
 * '.' (it names a file in the public keys directory). */
int audit_key_id_valid(const char *id);

/* The derived key id of a raw Ed25519 public key: "ed25519-" and 16 hex digits of its SHA-256. */
void audit_key_id_derive(const unsigned char pub[AUDIT_PUBKEY_LEN], char out[AUDIT_KEY_ID_MAX + 1]);

/* Loads an Ed25519 private key (PEM) from the secret file path; key_id NULL or "" derives the id.
 * On success *out is owned by the caller (audit_signer_free). Returns BST_OK,
 * BST_INVALID_ARGUMENT (not an Ed25519 private key, bad key id), or the bst_secret_read
 * statuses. */
enum bst_status audit_signer_load(struct audit_signer **out, const char *path, const char *key_id,
                                  struct bst_err *err);

/* NULL is a no-op. */
void audit_signer_free(struct audit_signer *s);

/* Signs the checkpoint (sequence, hash, s->key_id) into sig. Returns BST_OK or BST_INTERNAL. */
enum bst_status audit_signer_sign(const struct audit_signer *s, uint64_t sequence,
                                  const unsigned char hash[AUDIT_HASH_LEN],
                                  unsigned char sig[AUDIT_SIG_LEN]);

/* The public key as PEM (SubjectPublicKeyInfo), malloc'd, owned by the caller; NULL on
 * failure. */
char *audit_signer_public_pem(const struct audit_signer *s);

/* Writes the signer's public key as <dir>/<key_id>.pem (mode 0644) unless that file exists with
 * the same key. Returns BST_OK; BST_ALREADY_EXISTS when the file holds another key (a key id
 * reused for a different key); BST_UNAVAILABLE when it cannot be written. */
enum bst_status audit_signer_export(const struct audit_signer *s, const char *dir,
                                    struct bst_err *err);

/* A set of public keys for verification. */
struct audit_pubkeys;

/* Loads every *.pem file of dir that holds an Ed25519 public key (other files are skipped with
 * a note in err only when nothing loads). Each key answers to its file name without ".pem" and
 * to its derived id. On success *out is owned by the caller. Returns BST_OK, BST_NOT_FOUND (no
 * directory or no key in it), BST_RESOURCE_EXHAUSTED. */
enum bst_status audit_pubkeys_load(struct audit_pubkeys **out, const char *dir,
                                   struct bst_err *err);

/* Adds one public key PEM file under the id given (NULL: its file name stem). */
enum bst_status audit_pubkeys_add_file(struct audit_pubkeys *k, const char *path,
                                       struct bst_err *err);

/* Returns an empty set (add keys with audit_pubkeys_add_file), or NULL when out of memory. */
struct audit_pubkeys *audit_pubkeys_new(void);

void audit_pubkeys_free(struct audit_pubkeys *k);

/* Number of keys loaded. */
size_t audit_pubkeys_count(const struct audit_pubkeys *k);

/* Verifies a checkpoint signature. Returns 1 when valid, 0 when the signature is wrong, -1 when
 * no key answers to key_id. */
int audit_pubkeys_verify(const struct audit_pubkeys *k, const char *key_id, uint64_t sequence,
                         const unsigned char hash[AUDIT_HASH_LEN], const unsigned char *sig,
                         size_t sig_len);

#endif
