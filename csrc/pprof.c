/*
 * pprof.c -- see pprof.h.  Runs without the GIL on ringprof's exporter thread.
 *
 * The work is one pass over the samples (summing rows with equal stack,
 * thread and label set in a hash table, first-appearance order kept), then
 * one Sample message per sum.  A stack's packed location ids are encoded the
 * first time a sum uses it and copied for every later one; a frame gets its
 * Location (and its function an id) the first time a stack uses it.
 */
#include "pprof.h"

#include "mix64.h"

#include <stdlib.h>
#include <string.h>

/* Wire-format tags: (field number << 3) | wire type. */
#define TAG_PROFILE_SAMPLE 0x12u   /* Profile.sample = 2, length-delimited */
#define TAG_PROFILE_LOCATION 0x22u /* Profile.location = 4 */
#define TAG_SAMPLE_LOCATIONS 0x0Au /* Sample.location_id = 1, packed */
#define TAG_SAMPLE_VALUES 0x12u    /* Sample.value = 2, packed */
#define TAG_LOCATION_ID 0x08u      /* Location.id = 1 */
#define TAG_LOCATION_MAPPING 0x10u /* Location.mapping_id = 2 */
#define TAG_LOCATION_LINE 0x22u    /* Location.line = 4 */
#define TAG_LINE_FUNCTION 0x08u    /* Line.function_id = 1 */
#define TAG_LINE_LINE 0x10u        /* Line.line = 2 */

#define VARINT_MAX 10

/* ------------------------------------------------------------------ bytes */

static int bytes_reserve(rp_bytes *b, size_t more)
{
    if (more <= b->cap - b->len) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2) {
            return -1;
        }
        cap *= 2;
    }
    uint8_t *data = realloc(b->data, cap);
    if (data == NULL) {
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v > 0x7F) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Callers reserve VARINT_MAX bytes first. */
static void put_varint(rp_bytes *b, uint64_t v)
{
    while (v > 0x7F) {
        b->data[b->len++] = (uint8_t)((v & 0x7F) | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (uint8_t)v;
}

static void put_raw(rp_bytes *b, const uint8_t *src, size_t n)
{
    if (n) {
        memcpy(b->data + b->len, src, n);
        b->len += n;
    }
}

/* ------------------------------------------------------------------ tables */

/* thread id -> its index in thread_ids; built once (threads are few). */
typedef struct thread_index {
    int64_t *keys;
    uint32_t *vals; /* index + 1; 0: empty */
    size_t mask;
} thread_index;

static int thread_index_build(thread_index *t, const int64_t *ids, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2) {
        cap *= 2;
    }
    t->keys = calloc(cap, sizeof(*t->keys));
    t->vals = calloc(cap, sizeof(*t->vals));
    t->mask = cap - 1;
    if (t->keys == NULL || t->vals == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t at = (size_t)rp_mix64((uint64_t)ids[i]) & t->mask;
        while (t->vals[at] != 0 && t->keys[at] != ids[i]) {
            at = (at + 1) & t->mask;
        }
        if (t->vals[at] == 0) { /* a repeated id keeps its first index */
            t->keys[at] = ids[i];
            t->vals[at] = (uint32_t)(i + 1);
        }
    }
    return 0;
}

static long thread_index_get(const thread_index *t, int64_t id)
{
    size_t at = (size_t)rp_mix64((uint64_t)id) & t->mask;
    while (t->vals[at] != 0) {
        if (t->keys[at] == id) {
            return (long)t->vals[at] - 1;
        }
        at = (at + 1) & t->mask;
    }
    return -1;
}

/* (stack, thread index, label set) -> sum, in first-appearance order. */
typedef struct sum_row {
    int32_t stack;
    uint32_t thread;
    int32_t labels;
    uint64_t count, time, cpu; /* unsigned: wraps like the protobuf varint of a Python int */
} sum_row;

typedef struct sums {
    sum_row *rows;
    size_t len, cap;
    uint32_t *slots; /* row index + 1; 0: empty */
    size_t mask;
} sums;

static uint64_t sum_hash(int32_t stack, uint32_t thread, int32_t labels)
{
    uint64_t ids = (uint64_t)(uint32_t)stack << 32 | thread;
    return rp_mix64(ids ^ rp_mix64((uint64_t)(uint32_t)labels + 0x9e3779b97f4a7c15ULL));
}

static int sums_grow(sums *s)
{
    size_t cap = s->mask ? 2 * (s->mask + 1) : 1024;
    uint32_t *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        return -1;
    }
    for (size_t i = 0; i < s->len; i++) {
        const sum_row *r = &s->rows[i];
        size_t at = (size_t)sum_hash(r->stack, r->thread, r->labels) & (cap - 1);
        while (slots[at] != 0) {
            at = (at + 1) & (cap - 1);
        }
        slots[at] = (uint32_t)(i + 1);
    }
    free(s->slots);
    s->slots = slots;
    s->mask = cap - 1;
    return 0;
}

static sum_row *sums_get(sums *s, int32_t stack, uint32_t thread, int32_t labels)
{
    if (s->mask == 0 || 2 * (s->len + 1) > s->mask + 1) {
        if (s->len >= UINT32_MAX - 1 || sums_grow(s) != 0) {
            return NULL;
        }
    }
    size_t at = (size_t)sum_hash(stack, thread, labels) & s->mask;
    while (s->slots[at] != 0) {
        sum_row *r = &s->rows[s->slots[at] - 1];
        if (r->stack == stack && r->thread == thread && r->labels == labels) {
            return r;
        }
        at = (at + 1) & s->mask;
    }
    if (s->len == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        sum_row *rows = realloc(s->rows, cap * sizeof(*rows));
        if (rows == NULL) {
            return NULL;
        }
        s->rows = rows;
        s->cap = cap;
    }
    sum_row *r = &s->rows[s->len++];
    *r = (sum_row){.stack = stack, .thread = thread, .labels = labels};
    s->slots[at] = (uint32_t)s->len;
    return r;
}

/* ------------------------------------------------------------------ checks */

static int offsets_ok(const uint32_t *start, size_t n, size_t total)
{
    if (n > 0 && start == NULL) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (start[i] > start[i + 1] || start[i + 1] > total) {
            return 0;
        }
    }
    return 1;
}

static int input_ok(const rp_pprof_in *in)
{
    if (in->nstacks >= INT32_MAX || in->nframes >= INT32_MAX || in->nfunctions >= INT32_MAX ||
        in->nthreads >= UINT32_MAX - 1 || in->nlabel_sets >= INT32_MAX) {
        return 0;
    }
    if (!offsets_ok(in->stack_start, in->nstacks, in->nstack_frames) ||
        !offsets_ok(in->thread_start, in->nthreads, in->thread_fields_len) ||
        !offsets_ok(in->label_start, in->nlabel_sets, in->label_fields_len)) {
        return 0;
    }
    for (size_t i = 0; i < in->nstack_frames; i++) {
        if (in->stack_frames[i] < 0 || (size_t)in->stack_frames[i] >= in->nframes) {
            return 0;
        }
    }
    for (size_t i = 0; i < in->nframes; i++) {
        if (in->frame_function[i] < 0 || (size_t)in->frame_function[i] >= in->nfunctions) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ encoding */

typedef struct encoder {
    const rp_pprof_in *in;
    rp_pprof_out *out;
    uint64_t *location_of;   /* frame -> location id, 0: none yet */
    uint32_t *function_of;   /* function -> function id, 0: none yet */
    size_t nlocations;
    rp_bytes stack_ids;      /* packed location ids of the stacks encoded so far */
    size_t *stack_at;        /* stack -> offset in stack_ids + 1, 0: not encoded yet */
    size_t *stack_len;
} encoder;

static int add_location(encoder *e, int32_t frame)
{
    const rp_pprof_in *in = e->in;
    int32_t fn = in->frame_function[frame];
    if (e->function_of[fn] == 0) {
        e->out->functions[e->out->nfunctions++] = fn;
        e->function_of[fn] = (uint32_t)e->out->nfunctions;
    }
    uint64_t id = ++e->nlocations;
    e->location_of[frame] = id;
    uint64_t fid = e->function_of[fn];
    uint64_t line = (uint64_t)in->frame_line[frame];
    size_t line_size = 1 + varint_size(fid) + (line ? 1 + varint_size(line) : 0);
    size_t body = 1 + varint_size(id) + 2 + 1 + varint_size(line_size) + line_size;
    rp_bytes *b = &e->out->locations;
    if (bytes_reserve(b, 1 + VARINT_MAX + body) != 0) {
        return -1;
    }
    b->data[b->len++] = TAG_PROFILE_LOCATION;
    put_varint(b, body);
    b->data[b->len++] = TAG_LOCATION_ID;
    put_varint(b, id);
    b->data[b->len++] = TAG_LOCATION_MAPPING;
    b->data[b->len++] = 1;
    b->data[b->len++] = TAG_LOCATION_LINE;
    put_varint(b, line_size);
    b->data[b->len++] = TAG_LINE_FUNCTION;
    put_varint(b, fid);
    if (line) {
        b->data[b->len++] = TAG_LINE_LINE;
        put_varint(b, line);
    }
    return 0;
}

/* The packed location ids of stack `s`, leaf first, encoded on first use. */
static int stack_locations(encoder *e, int32_t s, const uint8_t **ids, size_t *len)
{
    if (e->stack_at[s] == 0) {
        const rp_pprof_in *in = e->in;
        uint32_t lo = in->stack_start[s], hi = in->stack_start[s + 1];
        if (bytes_reserve(&e->stack_ids, (size_t)(hi - lo) * VARINT_MAX) != 0) {
            return -1;
        }
        size_t at = e->stack_ids.len;
        for (uint32_t k = hi; k > lo; k--) { /* leaf first */
            int32_t frame = in->stack_frames[k - 1];
            if (e->location_of[frame] == 0 && add_location(e, frame) != 0) {
                return -1;
            }
            put_varint(&e->stack_ids, e->location_of[frame]);
        }
        e->stack_at[s] = at + 1;
        e->stack_len[s] = e->stack_ids.len - at;
    }
    *len = e->stack_len[s];
    *ids = *len ? e->stack_ids.data + (e->stack_at[s] - 1) : NULL;
    return 0;
}

static int put_sample(encoder *e, const sum_row *r)
{
    const rp_pprof_in *in = e->in;
    const uint8_t *ids;
    size_t nids;
    if (stack_locations(e, r->stack, &ids, &nids) != 0) {
        return -1;
    }
    uint64_t values[3] = {r->count, r->time, r->cpu};
    size_t nvalues = in->wall ? 3 : 2;
    size_t values_size = 0;
    for (size_t i = 0; i < nvalues; i++) {
        values_size += varint_size(values[i]);
    }
    size_t tlen = in->thread_start[r->thread + 1] - in->thread_start[r->thread];
    const uint8_t *tfield = tlen ? in->thread_fields + in->thread_start[r->thread] : NULL;
    size_t llen = in->label_start[r->labels + 1] - in->label_start[r->labels];
    const uint8_t *lfield = llen ? in->label_fields + in->label_start[r->labels] : NULL;
    size_t body = (nids ? 1 + varint_size(nids) + nids : 0) + 1 + varint_size(values_size) + values_size + tlen + llen;
    rp_bytes *b = &e->out->samples;
    if (bytes_reserve(b, 1 + VARINT_MAX + body) != 0) {
        return -1;
    }
    b->data[b->len++] = TAG_PROFILE_SAMPLE;
    put_varint(b, body);
    if (nids) {
        b->data[b->len++] = TAG_SAMPLE_LOCATIONS;
        put_varint(b, nids);
        put_raw(b, ids, nids);
    }
    b->data[b->len++] = TAG_SAMPLE_VALUES;
    put_varint(b, values_size);
    for (size_t i = 0; i < nvalues; i++) {
        put_varint(b, values[i]);
    }
    put_raw(b, tfield, tlen);
    put_raw(b, lfield, llen);
    return 0;
}

static int sum_samples(const rp_pprof_in *in, const thread_index *threads, sums *s)
{
    for (size_t i = 0; i < in->nsamples; i++) {
        if (in->weight[i] <= 0) {
            continue;
        }
        int32_t stack = in->stack[i], labels = in->labels[i];
        long thread = thread_index_get(threads, in->thread[i]);
        if (stack < 0 || (size_t)stack >= in->nstacks || labels < 0 || (size_t)labels >= in->nlabel_sets ||
            thread < 0) {
            return -2;
        }
        sum_row *r = sums_get(s, stack, (uint32_t)thread, labels);
        if (r == NULL) {
            return -1;
        }
        uint64_t w = (uint64_t)in->weight[i];
        r->count += w;
        r->time += w * (uint64_t)in->interval_ns;
        r->cpu += (uint64_t)in->cpu_ns[i];
    }
    return 0;
}

int rp_pprof_encode(const rp_pprof_in *in, rp_pprof_out *out)
{
    if (!input_ok(in)) {
        return -2;
    }
    thread_index threads = {0};
    sums s = {0};
    encoder e = {.in = in, .out = out};
    int rc = -1;
    e.location_of = calloc(in->nframes + 1, sizeof(*e.location_of));
    e.function_of = calloc(in->nfunctions + 1, sizeof(*e.function_of));
    e.stack_at = calloc(in->nstacks + 1, sizeof(*e.stack_at));
    e.stack_len = calloc(in->nstacks + 1, sizeof(*e.stack_len));
    out->functions = calloc(in->nfunctions + 1, sizeof(*out->functions));
    if (e.location_of == NULL || e.function_of == NULL || e.stack_at == NULL || e.stack_len == NULL ||
        out->functions == NULL || thread_index_build(&threads, in->thread_ids, in->nthreads) != 0) {
        goto done;
    }
    rc = sum_samples(in, &threads, &s);
    for (size_t i = 0; rc == 0 && i < s.len; i++) {
        rc = put_sample(&e, &s.rows[i]);
    }
done:
    free(threads.keys);
    free(threads.vals);
    free(s.rows);
    free(s.slots);
    free(e.location_of);
    free(e.function_of);
    free(e.stack_ids.data);
    free(e.stack_at);
    free(e.stack_len);
    return rc;
}

void rp_pprof_out_free(rp_pprof_out *out)
{
    free(out->samples.data);
    free(out->locations.data);
    free(out->functions);
    *out = (rp_pprof_out){0};
}
