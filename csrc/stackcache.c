/* stackcache.c -- see stackcache.h.  Called with or without the GIL; never
 * from the signal handler. */
#include "stackcache.h"

#include "mix64.h"

#include <stdlib.h>
#include <string.h>

#include "codes.h"
#include "ring.h"

static int constant_hash;

static uint64_t frame_hash(uint64_t code, uint64_t instr)
{
    return rp_mix64(code ^ rp_mix64(instr + 0x9e3779b97f4a7c15ULL));
}

/* ------------------------------------------------------------------ frame map */
void rp_fmap_init(rp_fmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->len = 0;
}

void rp_fmap_destroy(rp_fmap *m)
{
    free(m->slots);
    rp_fmap_init(m);
}

void rp_fmap_clear(rp_fmap *m)
{
    if (m->slots != NULL)
        memset(m->slots, 0, m->cap * sizeof(rp_fmap_slot));
    m->len = 0;
}

int rp_fmap_get(const rp_fmap *m, uint64_t code, uint64_t instr, int32_t *fid)
{
    if (m->len == 0)
        return 0;
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)frame_hash(code, instr) & mask;; i = (i + 1) & mask) {
        const rp_fmap_slot *s = &m->slots[i];
        if (!s->used)
            return 0;
        if (s->code == code && s->instr == instr) {
            *fid = s->fid;
            return 1;
        }
    }
}

static void fmap_place(rp_fmap_slot *slots, size_t cap, const rp_fmap_slot *src)
{
    size_t mask = cap - 1;
    size_t i = (size_t)frame_hash(src->code, src->instr) & mask;
    while (slots[i].used)
        i = (i + 1) & mask;
    slots[i] = *src;
}

static int fmap_rebuild(rp_fmap *m, size_t cap, const uint64_t *drop, size_t ndrop, size_t *dropped);

static int code_in(const uint64_t *codes, size_t n, uint64_t code)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (codes[mid] < code)
            lo = mid + 1;
        else if (codes[mid] > code)
            hi = mid;
        else
            return 1;
    }
    return 0;
}

static int fmap_rebuild(rp_fmap *m, size_t cap, const uint64_t *drop, size_t ndrop, size_t *dropped)
{
    rp_fmap_slot *slots = calloc(cap, sizeof(rp_fmap_slot));
    if (slots == NULL)
        return -1;
    size_t len = 0, gone = 0;
    for (size_t i = 0; i < m->cap; i++) {
        const rp_fmap_slot *s = &m->slots[i];
        if (!s->used)
            continue;
        if (ndrop && code_in(drop, ndrop, s->code)) {
            gone++;
            continue;
        }
        fmap_place(slots, cap, s);
        len++;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->len = len;
    if (dropped != NULL)
        *dropped = gone;
    return 0;
}

int rp_fmap_put(rp_fmap *m, uint64_t code, uint64_t instr, int32_t fid)
{
    if ((m->len + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        if (fmap_rebuild(m, cap, NULL, 0, NULL) != 0)
            return -1;
    }
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)frame_hash(code, instr) & mask;; i = (i + 1) & mask) {
        rp_fmap_slot *s = &m->slots[i];
        if (!s->used) {
            s->code = code;
            s->instr = instr;
            s->fid = fid;
            s->used = 1;
            m->len++;
            return 0;
        }
        if (s->code == code && s->instr == instr) {
            s->fid = fid;
            return 0;
        }
    }
}

long rp_fmap_forget_codes(rp_fmap *m, const uint64_t *codes, size_t n)
{
    if (m->len == 0 || n == 0)
        return 0;
    size_t gone = 0;
    if (fmap_rebuild(m, m->cap, codes, n, &gone) != 0) {
        rp_fmap_clear(m);
        return -1;
    }
    return (long)gone;
}

/* ------------------------------------------------------------------ stack map */
void rp_smap_test_constant_hash(int on)
{
    constant_hash = on;
}

static uint64_t stack_hash(uint16_t flags, const int32_t *fids, uint32_t n)
{
    if (constant_hash)
        return 42;
    uint64_t h = rp_mix64(((uint64_t)flags << 32) ^ n);
    for (uint32_t i = 0; i < n; i++)
        h = rp_mix64(h ^ (uint32_t)fids[i]);
    return h;
}

void rp_smap_init(rp_smap *m)
{
    memset(m, 0, sizeof(*m));
}

void rp_smap_destroy(rp_smap *m)
{
    free(m->slots);
    free(m->arena);
    rp_smap_init(m);
}

void rp_smap_clear(rp_smap *m)
{
    if (m->slots != NULL)
        memset(m->slots, 0, m->cap * sizeof(rp_smap_slot));
    m->len = 0;
    m->arena_len = 0;
}

static int smap_equal(const rp_smap *m, const rp_smap_slot *s, uint64_t h, uint16_t flags, const int32_t *fids,
                      uint32_t n)
{
    return s->hash == h && s->flags == flags && s->n == n &&
           (n == 0 || memcmp(m->arena + s->off, fids, n * sizeof(int32_t)) == 0);
}

int rp_smap_get(const rp_smap *m, uint16_t flags, const int32_t *fids, uint32_t n, int32_t *sid)
{
    if (m->len == 0)
        return 0;
    uint64_t h = stack_hash(flags, fids, n);
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const rp_smap_slot *s = &m->slots[i];
        if (!s->used)
            return 0;
        if (smap_equal(m, s, h, flags, fids, n)) {
            *sid = s->sid;
            return 1;
        }
    }
}

static int smap_grow(rp_smap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 256;
    rp_smap_slot *slots = calloc(cap, sizeof(rp_smap_slot));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        const rp_smap_slot *s = &m->slots[i];
        if (!s->used)
            continue;
        size_t j = (size_t)s->hash & (cap - 1);
        while (slots[j].used)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int rp_smap_put(rp_smap *m, uint16_t flags, const int32_t *fids, uint32_t n, int32_t sid)
{
    if ((m->len + 1) * 2 > m->cap && smap_grow(m) != 0)
        return -1;
    uint64_t h = stack_hash(flags, fids, n);
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    for (;; i = (i + 1) & mask) {
        rp_smap_slot *s = &m->slots[i];
        if (!s->used)
            break;
        if (smap_equal(m, s, h, flags, fids, n)) {
            s->sid = sid;
            return 0;
        }
    }
    if (m->arena_len + n > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 4096;
        while (cap < m->arena_len + n)
            cap *= 2;
        int32_t *arena = realloc(m->arena, cap * sizeof(int32_t));
        if (arena == NULL)
            return -1;
        m->arena = arena;
        m->arena_cap = cap;
    }
    if (n)
        memcpy(m->arena + m->arena_len, fids, n * sizeof(int32_t));
    rp_smap_slot *s = &m->slots[i];
    s->hash = h;
    s->off = m->arena_len;
    s->n = n;
    s->flags = flags;
    s->sid = sid;
    s->used = 1;
    m->arena_len += n;
    m->len++;
    return 0;
}

/* ------------------------------------------------------------------ drained buffers */
size_t rp_stackcache_count(const uint8_t *buf, size_t len)
{
    size_t off = 0, count = 0;
    while (off + sizeof(rp_record) <= len) {
        const rp_record *rec = (const rp_record *)(buf + off);
        if (rec->len < sizeof(rp_record) || rec->len > len - off)
            break;
        count++;
        off += rec->len;
    }
    return count;
}

/* ------------------------------------------------------------------ line map */
void rp_linemap_init(rp_linemap *m)
{
    rp_fmap_init(&m->codes);
    rp_fmap_init(&m->lines);
    m->entries = NULL;
    m->n = m->cap = 0;
}

void rp_linemap_destroy(rp_linemap *m)
{
    rp_fmap_destroy(&m->codes);
    rp_fmap_destroy(&m->lines);
    free(m->entries);
    rp_linemap_init(m);
}

void rp_linemap_clear(rp_linemap *m)
{
    rp_fmap_clear(&m->codes);
    rp_fmap_clear(&m->lines);
    m->n = 0;
}

int rp_linemap_add_code(rp_linemap *m, uint64_t code, const rp_code_lines *lines)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        rp_code_lines *p = realloc(m->entries, cap * sizeof(rp_code_lines));
        if (p == NULL)
            return -1;
        m->entries = p;
        m->cap = cap;
    }
    if (rp_fmap_put(&m->codes, code, 0, (int32_t)m->n) != 0)
        return -1;
    m->entries[m->n++] = *lines;
    return 0;
}

int rp_linemap_add_line(rp_linemap *m, uint64_t code, int line, int32_t fid)
{
    return rp_fmap_put(&m->lines, code, (uint64_t)(uint32_t)line, fid);
}

long rp_linemap_forget_codes(rp_linemap *m, const uint64_t *codes, size_t n)
{
    long a = rp_fmap_forget_codes(&m->codes, codes, n);
    long b = rp_fmap_forget_codes(&m->lines, codes, n);
    if (a < 0 || b < 0) {
        rp_linemap_clear(m);
        return -1;
    }
    return a;
}

int rp_linemap_line(const rp_linemap *m, uint64_t code, uint64_t instr, int *line)
{
    int32_t idx;
    if (!rp_fmap_get(&m->codes, code, 0, &idx))
        return 0;
    const rp_code_lines *c = &m->entries[idx];
    uint64_t unit = (uint64_t)c->unit;
    if (instr < c->start || (instr - c->start) % unit != 0)
        return 0;
    uint64_t lasti = (instr - c->start) / unit;
    if (lasti >= (uint64_t)c->ncodeunits || lasti < (uint64_t)c->firsttraceable)
        return 0;
    int l = rp_linetable_line(c->table, c->len, c->firstlineno, (long)lasti);
    *line = l > 0 ? l : 0;
    return 1;
}

/* A raw frame's id from the line map (then entered into the frame map). */
static int frame_by_line(rp_fmap *fm, const rp_linemap *lm, uint64_t code, uint64_t instr, int32_t *fid)
{
    int line;
    if (lm == NULL || !rp_linemap_line(lm, code, instr, &line))
        return 0;
    if (!rp_fmap_get(&lm->lines, code, (uint64_t)(uint32_t)line, fid))
        return 0;
    (void)rp_fmap_put(fm, code, instr, *fid); /* a cache: out of memory only costs the next lookup */
    return 1;
}

/* The stack id of one record from the maps, or -1. */
static int32_t resolve_one(const rp_record *rec, rp_fmap *fm, const rp_smap *sm, const rp_linemap *lm,
                           const uint64_t *dead, size_t ndead, int32_t *scratch)
{
    uint32_t nframes = rec->nframes;
    if (sizeof(rp_record) + (size_t)nframes * sizeof(rp_frame) > rec->len)
        return -1; /* malformed: let the Python resolver decide */
    const rp_frame *fr = (const rp_frame *)(rec + 1);
    uint32_t n = 0;
    for (uint32_t i = 0; i < nframes; i++) {
        int32_t fid;
        if (ndead && code_in(dead, ndead, fr[i].code))
            return -1;
        if (!rp_fmap_get(fm, fr[i].code, fr[i].instr, &fid) && !frame_by_line(fm, lm, fr[i].code, fr[i].instr, &fid))
            return -1;
        if (fid != RP_FRAME_SKIP)
            scratch[n++] = fid;
    }
    int32_t sid;
    if (!rp_smap_get(sm, (uint16_t)(rec->flags & RP_STACK_FLAG_MASK), scratch, n, &sid))
        return -1;
    return sid;
}

long rp_stackcache_resolve(const uint8_t *buf, size_t count, rp_fmap *fm, const rp_smap *sm,
                           const rp_linemap *lm, const uint64_t *dead, size_t ndead, rp_columns *cols)
{
    size_t off = 0, deepest = 1;
    for (size_t i = 0; i < count; i++) {
        const rp_record *rec = (const rp_record *)(buf + off);
        if (rec->nframes > deepest)
            deepest = rec->nframes;
        off += rec->len;
    }
    int32_t *scratch = malloc(deepest * sizeof(int32_t));
    if (scratch == NULL)
        return -1;
    off = 0;
    long unresolved = 0;
    for (size_t i = 0; i < count; i++) {
        const rp_record *rec = (const rp_record *)(buf + off);
        int32_t sid = resolve_one(rec, fm, sm, lm, dead, ndead, scratch);
        unresolved += sid < 0;
        cols->stack[i] = sid;
        cols->tid[i] = (int64_t)rec->tid;
        cols->time_ns[i] = (int64_t)rec->time_ns;
        cols->weight[i] = (int64_t)rec->weight;
        cols->cpu_ns[i] = (int64_t)rec->cpu_ns;
        cols->flags[i] = rec->flags;
        cols->label[i] = (int64_t)rec->label;
        cols->depth[i] = (int32_t)rec->depth;
        cols->offset[i] = (int64_t)off;
        off += rec->len;
    }
    free(scratch);
    return unresolved;
}
