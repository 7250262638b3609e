/* System clocks behind replaceable function pointers. */
#include "clock.h"

#include <time.h>

static int64_t sys_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * BST_NS_PER_S + ts.tv_nsec;
}

static int64_t sys_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * BST_NS_PER_S + ts.tv_nsec;
}

static int64_t (*mono_fn)(void) = sys_mono;
static int64_t (*wall_fn)(void) = sys_wall;

int64_t bst_mono_ns(void)
{
    return mono_fn();
}

int64_t bst_wall_ns(void)
{
    return wall_fn();
}

void bst_clock_set_mono(int64_t (*fn)(void))
{
    mono_fn = fn != NULL ? fn : sys_mono;
}

void bst_clock_set_wall(int64_t (*fn)(void))
{
    wall_fn = fn != NULL ? fn : sys_wall;
}
