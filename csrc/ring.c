/* ring.c -- the non-signal side of the SPSC ring (see ring.h for the contract). */
#include "ring.h"

#include <string.h>
#include <sys/mman.h>

int rp_ring_init(rp_ring *r, uint64_t cap_bytes)
{
    /* mmap, not malloc: pages are only committed when the producer touches
     * them, so idle threads cost address space, not RSS. */
    void *p = mmap(NULL, cap_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return -1;
    }
    r->buf = p;
    r->cap = cap_bytes;
    atomic_store(&r->head, 0);
    atomic_store(&r->tail, 0);
    atomic_store(&r->dropped, 0);
    return 0;
}

void rp_ring_destroy(rp_ring *r)
{
    if (r->buf) {
        munmap(r->buf, r->cap);
    }
    r->buf = NULL;
    r->cap = 0;
}

void rp_ring_reset(rp_ring *r)
{
    atomic_store(&r->head, 0);
    atomic_store(&r->tail, 0);
    atomic_store(&r->dropped, 0);
}

uint64_t rp_ring_copy_out(rp_ring *r, uint8_t *out, uint64_t cap, uint64_t upto)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    if (upto < h) {
        h = upto;
    }
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t n = 0;
    while (t < h) {
        const rp_record *rec = (const rp_record *)(r->buf + (t & (r->cap - 1)));
        uint32_t len = rec->len;
        if ((rec->magic != RP_REC_MAGIC && rec->magic != RP_PAD_MAGIC) || len < 8 || len % 8 ||
            len > h - t) {
            /* Cannot happen with a correct producer; never loop or read out of
             * bounds because of it: discard everything published so far. */
            t = h;
            break;
        }
        if (rec->magic == RP_REC_MAGIC) {
            if (n + len > cap) {
                break;
            }
            memcpy(out + n, rec, len);
            n += len;
        }
        t += len;
    }
    atomic_store_explicit(&r->tail, t, memory_order_release);
    return n;
}
