/* JSON-lines logging to stderr. One line per event, written with a single write(2) so lines
 * from different threads never interleave. Values are escaped by jansson (control characters
 * become \uXXXX), so nothing a peer sends can forge a log line. Never pass a secret. */
#ifndef BASTION_COMMON_LOG_H
#define BASTION_COMMON_LOG_H

enum bst_log_level { BST_LOG_DEBUG = 0, BST_LOG_INFO, BST_LOG_WARN, BST_LOG_ERROR };

/* Sets the minimum level written (default BST_LOG_INFO). */
void bst_log_set_level(enum bst_log_level level);

/* Parses "debug", "info", "warn" or "error". Returns 0, or -1 for anything else. */
int bst_log_level_parse(const char *s, enum bst_log_level *out);

/* Writes {"ts":..., "level":..., "event":event, key: value, ...}. The variadic part is pairs of
 * const char * key and const char * value, ended by a NULL key; a NULL value is skipped.
 * Example: bst_log(BST_LOG_INFO, "listening", "address", addr, NULL); */
void bst_log(enum bst_log_level level, const char *event, ...) __attribute__((sentinel));

/* Returns whether level would be written (to skip building expensive fields). */
int bst_log_enabled(enum bst_log_level level);

#endif
