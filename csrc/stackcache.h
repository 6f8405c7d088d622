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
 * LINE MAP: for code objects the resolver has seen alive, what turns any of
 * their instructions into a line without the code object -- the address of
 * its first code unit and its location table (the table's bytes object is
 * kept alive by the map's owner, so the table outlives the code object) --
 * and (code pointer, line) -> frame id.  A raw frame missing from the frame
 * map whose code is here resolves in C when its line has a frame id, and is
 * entered into the frame map.  Entries are dropped with the frame map's when
 * a death at the address is reported (rp_linemap_forget_codes): the same
 * guarantee, so an address in the map names the object it was learnt from.
 *
 * rp_stackcache_resolve() walks a drained buffer and fills the per-sample
 * columns; a sample whose stack cannot be resolved from the maps (a raw frame
 * in neither the frame map nor the line map, a code pointer in the caller's
 * dead set, or a stack never seen) gets stack id -1 and is left to the Python
 * resolver.
 *
 * Both maps use open addressing with linear probing and grow at 1/2 load;
 * allocation failure is reported (-1), never fatal.
 *
 * SIGNAL-SAFETY CONTRACT
 * ----------------------
 * Never called from the signal handler: only the drain thread uses these
 * maps, one caller at a time (the drain lock), with the GIL held or, for
 * rp_stackcache_count/resolve and the forget calls, released.  They touch no
 * Python object, so running without the GIL is safe; they allocate with
 * malloc, which a signal handler could not.
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

/* How to find the line of any instruction of one code object. */
typedef struct rp_code_lines {
    uint64_t start;               /* address of its first code unit */
    const unsigned char *table;   /* its location table (co_linetable) */
    size_t len;                   /*   bytes in it */
    int firstlineno;
    int ncodeunits;
    int firsttraceable;           /* code units before this are its prologue (an incomplete frame) */
    int unit;                     /* bytes per code unit */
} rp_code_lines;

typedef struct rp_linemap {
    rp_fmap codes;           /* (code, 0) -> index into entries */
    rp_fmap lines;           /* (code, line) -> frame id */
    rp_code_lines *entries;  /* append-only until cleared: a forgotten code's entry stays */
    size_t n, cap;           /*   (so the owner clears the map when n grows too large) */
} rp_linemap;

void rp_linemap_init(rp_linemap *m);
void rp_linemap_destroy(rp_linemap *m);
void rp_linemap_clear(rp_linemap *m);
/* 0, or -1 when out of memory (the map is unchanged). */
int rp_linemap_add_code(rp_linemap *m, uint64_t code, const rp_code_lines *lines);
int rp_linemap_add_line(rp_linemap *m, uint64_t code, int line, int32_t fid);
/* Forget these code pointers (sorted ascending); -1 when out of memory (then cleared). */
long rp_linemap_forget_codes(rp_linemap *m, const uint64_t *codes, size_t n);
/* Line of raw instruction pointer instr of a known code object: 1 and *line
 * set (0: no line), or 0 (unknown code, or an instruction outside its body or
 * in its prologue: left to the resolver). */
int rp_linemap_line(const rp_linemap *m, uint64_t code, uint64_t instr, int *line);

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
 * resolved in Python.  Raw frames resolved through the line map are added to
 * `fm`.  Returns how many samples were left unresolved, or -1 when out of
 * memory. */
long rp_stackcache_resolve(const uint8_t *buf, size_t count, rp_fmap *fm, const rp_smap *sm,
                           const rp_linemap *lm, const uint64_t *dead, size_t ndead, rp_columns *cols);

#endif
