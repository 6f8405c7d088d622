/*
 * ring.h -- the lock-free single-producer / single-consumer byte ring and the
 * sample record format that travels through it.
 *
 * SIGNAL-SAFETY CONTRACT
 * ----------------------
 * The producer side (rp_ring_reserve / rp_ring_commit) is called from inside a
 * signal handler.  It therefore:
 *   - never allocates, never locks, never calls into libc except nothing at all
 *     (plain loads/stores plus C11 atomics that are lock-free, checked below);
 *   - never blocks and never overwrites: when the record does not fit, the
 *     sample is dropped and `dropped` is incremented;
 *   - has exactly one producer per ring.  That holds because each ring belongs
 *     to one OS thread, timer signals for that thread are delivered only to it,
 *     and the kernel blocks the signal while its handler runs (no SA_NODEFER),
 *     so the handler cannot nest on the same thread.  (The wall-mode tick ring
 *     is not written by a handler: its producer is whoever holds the sampler's
 *     control mutex.)
 * The consumer side (rp_ring_pending / rp_ring_copy_out) runs on the drain
 * thread.  It only ever reads bytes in [tail, head) after an acquire load of
 * head, and publishes tail with a release store, so the producer never reuses
 * bytes the consumer is still copying.
 *
 * LAYOUT
 * ------
 * `head` and `tail` are free-running byte counters (never wrap in practice:
 * 2^64 bytes).  A record is 8-byte aligned and always contiguous in the buffer:
 * if it would straddle the end, the producer first writes a PAD header that
 * covers the rest of the buffer and the record starts at offset 0.  The
 * consumer skips PAD records.
 */
#ifndef RINGPROF_RING_H
#define RINGPROF_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#if ATOMIC_LLONG_LOCK_FREE != 2 || ATOMIC_INT_LOCK_FREE != 2
#error "ringprof needs lock-free 64-bit atomics to be async-signal-safe"
#endif

#define RP_REC_MAGIC 0x52505331u /* "RPS1": a sample record */
#define RP_PAD_MAGIC 0x52505030u /* "RPP0": padding up to the end of the buffer */

/* Sample flags; must match ringprof.model.FLAG_*. */
enum {
    RP_F_TRUNCATED = 0x01,    /* deeper than max_depth: leaf side kept */
    RP_F_HOLDS_GIL = 0x02,    /* the thread was running Python */
    RP_F_NO_TSTATE = 0x04,    /* no Python thread state on this thread */
    RP_F_BAD_FRAME = 0x08,    /* walk stopped on an implausible frame */
    RP_F_OTHER_INTERP = 0x10, /* sub-interpreter thread: not walked */
    RP_F_FINALIZING = 0x20,   /* interpreter finalizing: not walked */
    RP_F_BLOCKED = 0x80,      /* wall mode: the thread was not running Python; written by the tick
                                 thread, without a signal, from a stack read while it was blocked */
};

/* One sampled frame: raw pointers only.  The handler never dereferences the
 * code object; the drain validates and resolves these later. */
typedef struct rp_frame {
    uint64_t code;  /* PyCodeObject* of the frame */
    uint64_t instr; /* raw instruction pointer (prev_instr / instr_ptr) */
} rp_frame;

/* Record header.  Followed by `nframes` rp_frame entries, LEAF FIRST. */
typedef struct rp_record {
    uint32_t magic;     /* RP_REC_MAGIC or RP_PAD_MAGIC */
    uint32_t len;       /* total bytes of this record incl. header, 8-aligned */
    uint16_t nframes;   /* frames stored (<= max_depth) */
    uint16_t flags;     /* RP_F_* */
    uint32_t depth;     /* frames recorded (== nframes); RP_F_TRUNCATED says the stack was deeper */
    uint64_t tid;       /* kernel thread id */
    uint64_t time_ns;   /* CLOCK_MONOTONIC at the sample */
    uint64_t weight;    /* timer expirations this sample stands for (1 + overrun) */
    uint64_t cpu_ns;    /* wall mode: thread CPU time since its previous sample */
    uint64_t label;     /* label-set id active on the thread (0 = none) */
} rp_record;

_Static_assert(sizeof(rp_record) % 8 == 0, "records must stay 8-byte aligned");
_Static_assert(sizeof(rp_frame) == 16, "frame layout is part of the drain ABI");

typedef struct rp_ring {
    _Alignas(64) _Atomic uint64_t head;    /* written by the producer only */
    _Alignas(64) _Atomic uint64_t tail;    /* written by the consumer only */
    _Alignas(64) _Atomic uint64_t dropped; /* producer increments on a full ring */
    uint64_t cap;                          /* bytes, power of two */
    uint8_t *buf;
} rp_ring;

/* Consumer/owner side: allocate (mmap) and free.  Not signal-safe. */
int rp_ring_init(rp_ring *r, uint64_t cap_bytes);
void rp_ring_destroy(rp_ring *r);
/* Forget all content (only when no producer can run, e.g. in a fork child). */
void rp_ring_reset(rp_ring *r);

/* Producer side (signal handler).  Reserve room for a record of at most
 * `max_len` bytes.  Returns the record's address, or NULL when the ring is
 * full (the drop is counted).  *pos receives the producer's position, to hand
 * back to rp_ring_commit. */
static inline rp_record *rp_ring_reserve(rp_ring *r, uint32_t max_len, uint64_t *pos)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t off = h & (r->cap - 1);
    uint64_t pad = (off + max_len > r->cap) ? r->cap - off : 0;
    if (r->buf == NULL || max_len > r->cap || r->cap - (h - t) < pad + max_len) {
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        return NULL;
    }
    if (pad) {
        /* The consumer cannot see this until head moves past it (commit). */
        rp_record *p = (rp_record *)(r->buf + off);
        p->magic = RP_PAD_MAGIC;
        p->len = (uint32_t)pad;
        h += pad;
        off = 0;
    }
    *pos = h;
    return (rp_record *)(r->buf + off);
}

/* Publish a record previously reserved at *pos whose final length is rec->len. */
static inline void rp_ring_commit(rp_ring *r, uint64_t pos, const rp_record *rec)
{
    atomic_store_explicit(&r->head, pos + rec->len, memory_order_release);
}

/* Consumer side.  Bytes currently readable. */
static inline uint64_t rp_ring_pending(rp_ring *r)
{
    return atomic_load_explicit(&r->head, memory_order_acquire) -
           atomic_load_explicit(&r->tail, memory_order_relaxed);
}

static inline uint64_t rp_ring_dropped(rp_ring *r)
{
    return atomic_load_explicit(&r->dropped, memory_order_relaxed);
}

/* Copy whole sample records (PADs skipped) published before position `upto`
 * into out[0..cap); returns the bytes written.  Stops early, leaving the rest
 * in the ring, when `out` is full. */
uint64_t rp_ring_copy_out(rp_ring *r, uint8_t *out, uint64_t cap, uint64_t upto);

#endif /* RINGPROF_RING_H */
