/*
 * stackcache.h -- the drain's resolution caches, in C so that a steady-state
 * drain pass runs without the GIL (nothing here touches Python objects, and
 * nothing here is ever called from the signal handler).
 *
 * FRAME MAP: raw frame (code pointer, instruction pointer) -> frame id, an
 * int32 the resolver assigned to the Python Frame it resolved that raw frame
 * to (RP_FRAME_SKIP: an incomplete frame, left out of the stack).  The
 * resolver enters only raw frames of code objects that were proven live when
 * it resolved them, and removes every entry of a code pointer as soon as a
 * death at that address is reported (rp_fmap_forget_codes), so a pointer in
 * the map names the code object the entry was made from.
 *
 * STACK MAP: (flags, sequence of frame ids, leaf first) -> stack id in the
 * resolver's stack table.  Keys of any length (up to RP_MAX_DEPTH_LIMIT
 * frames) are copied into an arena owned by the map.
 *
 * rp_stackcache_resolve() walks a drained buffer and fills the per-sample
 * columns; a sample whose stack cannot be resolved from the maps (a raw frame
 * not in the frame map, a code pointer in the caller's dead set, or a stack
 * never seen) gets stack id -1 and is left to the Python resolver.
 *
 * Both maps use open addressing with linear probing and grow at 1/2 load;
 * allocation failure is reported (-1), never fatal.
 */
#ifndef RINGPROF_STACKCACHE_H
#define RINGPROF_STACKCACHE_H

#include <stddef.h>
#include <stdint.h>

#define RP_FRAME_SKIP (-1)
/* Flags that change how a stack reads (every RP_F_* but HOLDS_GIL). */
#define RP_STACK_FLAG_MASK 0x3Du

typedef struct rp_fmap_slot {
    uint64_t code;
    uint64_t instr;
    int32_t fid;
    uint32_t used;
} rp_fmap_slot;

typedef struct rp_fmap {
    rp_fmap_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t len;
} rp_fmap;

typedef struct rp_smap_slot {
    uint64_t hash;
    size_t off; /* into the arena */
    uint32_t n;
    uint16_t flags;
    uint16_t used;
    int32_t sid;
} rp_smap_slot;

typedef struct rp_smap {
    rp_smap_slot *slots;
    size_t cap;
    size_t len;
    int32_t *arena;
    size_t arena_len;
    size_t arena_cap;
} rp_smap;

void rp_fmap_init(rp_fmap *m);
void rp_fmap_destroy(rp_fmap *m);
void rp_fmap_clear(rp_fmap *m);
/* 1 and *fid set when present, else 0. */
int rp_fmap_get(const rp_fmap *m, uint64_t code, uint64_t instr, int32_t *fid);
/* Insert or replace; 0, or -1 when out of memory (the map is unchanged). */
int rp_fmap_put(rp_fmap *m, uint64_t code, uint64_t instr, int32_t fid);
/* Remove every entry whose code pointer is in `codes` (sorted ascending, n
 * entries); returns how many entries were removed, or -1 when out of memory
 * (the map is then cleared: it is only a cache). */
long rp_fmap_forget_codes(rp_fmap *m, const uint64_t *codes, size_t n);

void rp_smap_init(rp_smap *m);
void rp_smap_destroy(rp_smap *m);
void rp_smap_clear(rp_smap *m);
int rp_smap_get(const rp_smap *m, uint16_t flags, const int32_t *fids, uint32_t n, int32_t *sid);
int rp_smap_put(rp_smap *m, uint16_t flags, const int32_t *fids, uint32_t n, int32_t sid);
/* Test hook: hash every stack key to the same value (collision handling). */
void rp_smap_test_constant_hash(int on);

/* Columns filled by rp_stackcache_resolve, one entry per record. */
typedef struct rp_columns {
    int32_t *stack;  /* stack id, or -1: resolve in Python */
    int64_t *tid;
    int64_t *time_ns;
    int64_t *weight;
    int64_t *cpu_ns;
    uint16_t *flags;
    int64_t *label;
    int32_t *depth;
    int64_t *offset; /* byte offset of the record in the buffer */
} rp_columns;

/* Count the well-formed records at the start of `buf` (what a drain returns). */
size_t rp_stackcache_count(const uint8_t *buf, size_t len);
/* Fill `cols` for the first `count` records (count from rp_stackcache_count).
 * `dead` (sorted, ndead entries) are code pointers whose samples must be
 * resolved in Python.  Returns how many samples were left unresolved, or -1
 * when out of memory. */
long rp_stackcache_resolve(const uint8_t *buf, size_t count, const rp_fmap *fm, const rp_smap *sm,
                           const uint64_t *dead, size_t ndead, rp_columns *cols);

#endif
