/* The two clocks: monotonic for deadlines, timeouts and rate limits; wall time for token and
 * certificate validity and audit timestamps. Both can be replaced in tests. */
#ifndef BASTION_COMMON_CLOCK_H
#define BASTION_COMMON_CLOCK_H

#include <stdint.h>

/* Nanoseconds on the monotonic clock (arbitrary origin, never goes back). */
int64_t bst_mono_ns(void);

/* Nanoseconds since the Unix epoch on the wall clock. */
int64_t bst_wall_ns(void);

/* Test hooks: replace either clock with fn (NULL restores the system clock). Not thread-safe
 * with concurrent readers; call before starting threads. */
void bst_clock_set_mono(int64_t (*fn)(void));
void bst_clock_set_wall(int64_t (*fn)(void));

#define BST_NS_PER_MS INT64_C(1000000)
#define BST_NS_PER_S INT64_C(1000000000)

#endif
