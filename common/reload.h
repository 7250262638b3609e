/* The reload registry: one mechanism (SIGHUP now, an admin endpoint later) through which every
 * component that holds configuration, keys, certificates or policy rebuilds its snapshot. Each
 * component builds a complete new snapshot and swaps it in atomically, or keeps the old one and
 * reports why. A failure of one component does not stop the others. */
#ifndef BASTION_COMMON_RELOAD_H
#define BASTION_COMMON_RELOAD_H

#include "status.h"

/* Rebuilds the component's snapshot. Returns BST_OK after swapping in a new snapshot; any other
 * status means the old snapshot is still in force and err says why. Runs on the thread that
 * calls bst_reload_all() (the main thread), never on a worker loop. */
typedef enum bst_status (*bst_reload_fn)(void *ctx, struct bst_err *err);

/* Registers a component under a stable name (used in logs). The registry does not own ctx.
 * Returns BST_OK or BST_RESOURCE_EXHAUSTED when the fixed-size registry is full. */
enum bst_status bst_reload_register(const char *name, bst_reload_fn fn, void *ctx);

/* Removes every registration (shutdown and tests). */
void bst_reload_clear(void);

/* Reloads every registered component in registration order, logging each outcome. Returns the
 * number of components that refused their new input (0 = all reloaded). */
int bst_reload_all(void);

/* A refcounted, atomically swappable pointer to an immutable snapshot. Readers take a reference
 * with bst_snap_get() and drop it with the component's release function; a swap never frees a
 * snapshot that a reader still holds. */
struct bst_snap;

/* Creates a holder for the initial snapshot `first` (owned by the holder from now on);
 * destroy(obj) is called when the last reference goes. Returns NULL when out of memory. */
struct bst_snap *bst_snap_new(void *first, void (*destroy)(void *obj));

/* Returns the current snapshot with a reference the caller must drop with bst_snap_put(). */
void *bst_snap_get(struct bst_snap *s);

/* Drops a reference obtained from bst_snap_get(). */
void bst_snap_put(struct bst_snap *s, void *obj);

/* Installs next (the holder owns it) and drops the holder's reference to the previous one. */
void bst_snap_swap(struct bst_snap *s, void *next);

/* Destroys the holder and its current snapshot (all readers must be done). NULL is a no-op. */
void bst_snap_free(struct bst_snap *s);

#endif
