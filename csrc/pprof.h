/*
 * pprof.h -- the bulk of a pprof Profile message (google/pprof
 * proto/profile.proto), encoded in C so that exporting a window does not hold
 * the GIL: samples summed by (stack, thread, label set), their Sample
 * messages, and one Location message per frame the samples use.
 *
 * SIGNAL-SAFETY CONTRACT
 * ----------------------
 * Never called from the signal handler: the exporter calls it with the GIL
 * released.  It reads only the integer tables it is given (no Python object),
 * allocates with malloc, and reports allocation failure (-1) instead of
 * failing.  Every id in the input is checked against its table's size before
 * it is used as an index (-2: bad input), so a malformed profile cannot make
 * it read out of bounds.
 *
 * What stays in Python: the string table, the Function messages (strings), and
 * the label fields of each thread and label set (a few per window), passed in
 * already encoded.  Ids are numbered in first-use order, as the pure-Python
 * encoder numbers them, so the output is deterministic.
 */
#ifndef RINGPROF_PPROF_H
#define RINGPROF_PPROF_H

#include <stddef.h>
#include <stdint.h>

typedef struct rp_bytes {
    uint8_t *data;
    size_t len;
    size_t cap;
} rp_bytes;

typedef struct rp_pprof_in {
    /* The samples, one per row. */
    size_t nsamples;
    const int32_t *stack;  /* stack id: index into stack_start */
    const int64_t *thread; /* thread id: one of thread_ids */
    const int32_t *labels; /* label set id: index into label_start */
    const int64_t *weight; /* rows with weight <= 0 are left out */
    const int64_t *cpu_ns;
    int64_t interval_ns; /* a sample's time is weight * interval_ns */
    int wall;            /* values (count, time, cpu) in wall mode, else (count, time) */
    /* Stacks: stack s is frames[stack_start[s] .. stack_start[s + 1]), root first. */
    size_t nstacks;
    const uint32_t *stack_start; /* nstacks + 1 entries */
    const int32_t *stack_frames;
    size_t nstack_frames;
    /* Frames: function index (into a table of nfunctions) and line. */
    size_t nframes;
    const int32_t *frame_function;
    const int64_t *frame_line;
    size_t nfunctions;
    /* Encoded label fields of each thread and each label set. */
    size_t nthreads;
    const int64_t *thread_ids;
    const uint32_t *thread_start; /* nthreads + 1 offsets into thread_fields */
    const uint8_t *thread_fields;
    size_t thread_fields_len;
    size_t nlabel_sets;
    const uint32_t *label_start; /* nlabel_sets + 1 offsets into label_fields */
    const uint8_t *label_fields;
    size_t label_fields_len;
} rp_pprof_in;

typedef struct rp_pprof_out {
    rp_bytes samples;    /* Profile.sample fields, tags included */
    rp_bytes locations;  /* Profile.location fields, tags included */
    int32_t *functions;  /* function indexes used, in id order (id = position + 1) */
    size_t nfunctions;
} rp_pprof_out;

/* Encode; 0 on success, -1 out of memory, -2 an id out of range.  `out` must
 * be zeroed before the call and released with rp_pprof_out_free after it,
 * whatever the result. */
int rp_pprof_encode(const rp_pprof_in *in, rp_pprof_out *out);
void rp_pprof_out_free(rp_pprof_out *out);

#endif
