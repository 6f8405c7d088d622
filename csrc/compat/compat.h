/*
 * compat/compat.h -- the one interface between ringprof and CPython's private
 * frame / thread-state layouts.  Each supported minor version has one small
 * header (py311.h ... py315.h); adding a version means adding one file and one
 * #elif below.  From 3.13 on, debug_offsets.h checks the compiled-in layout
 * against the running interpreter's _PyRuntime.debug_offsets.
 *
 * SIGNAL-SAFETY CONTRACT
 * ----------------------
 * Everything marked [handler] is called from the signal handler on the
 * interrupted thread itself.  Those functions only perform plain loads of that
 * thread's own state (its PyThreadState, its _PyInterpreterFrame chain) and of
 * process-wide atomics; they never dereference a code object, never touch a
 * refcount, never call the C-API except the lock-free getters named in each
 * file, and never allocate.
 *
 * Functions marked [ticker] run on ringprof's wall-mode tick thread (a plain
 * pthread: no GIL, not a signal handler).  They read another thread's state:
 * relaxed loads of process-wide GIL fields, or address arithmetic on a
 * fault-free copy; they never dereference another thread's pointers.
 *
 * Functions marked [gil] run on the drain thread with the GIL held.
 *
 * Interface (all static inline):
 *   [handler] PyThreadState *rpc_this_tstate(void)   thread state bound to this OS thread, or NULL
 *   [handler] int   rpc_holds_gil(PyThreadState *)   1 if that thread state is attached (running Python)
 *   [handler] int   rpc_finalizing(void)             1 once interpreter finalization started
 *   [handler] const void *rpc_first_frame(PyThreadState *)
 *   [handler] const void *rpc_outer_frame_slot(PyThreadState *)  where to resume if the leaf is garbage
 *   [handler] const void *rpc_chain_end(PyThreadState *)  sentinel frame that ends the chain (3.15), or NULL
 *   [handler] const void *rpc_frame_previous(const void *frame)
 *   [handler] int   rpc_frame_kind(const void *frame) RPC_FRAME_PYTHON / RPC_FRAME_SHIM / RPC_FRAME_BAD
 *   [handler] int   rpc_live_ranges / rpc_in_ranges  (shared, below): where frames may be read directly
 *             RPC_FRAME_HEADER_SIZE: bytes of a frame the walk reads
 *   [handler] uint64_t rpc_frame_code(const void *frame)   raw code pointer
 *   [handler] uint64_t rpc_frame_instr(const void *frame)  raw instruction pointer
 *   [handler] int   rpc_frame_is_generator / rpc_generator_executing  (shared, below): the
 *             tripwire for generator frames read in place
 *   [handler] const void *rpc_exc_head / rpc_exc_base / rpc_exc_previous(PyThreadState * / entry)
 *             the thread's exc_info chain of executing generators (3.11/3.12; NULL elsewhere)
 *   [handler] const void *rpc_exc_generator_frame(entry, int *is_generator)  (shared, below):
 *             the frame of the executing generator that owns that entry, or NULL
 *   [handler] const void *rpc_innermost_shim(PyThreadState *, long offset)  the innermost eval
 *             loop's entry frame (3.12; NULL elsewhere)
 *   [gil]     long  rpc_measure_shim_offset(PyThreadState *)  its distance from that loop's cframe
 *   [ticker]  PyThreadState *rpc_gil_holder(PyInterpreterState *)  thread state holding its GIL, or NULL
 *   [ticker]  PyThreadState *rpc_gil_switches(PyInterpreterState *, unsigned long *switches)
 *             the GIL's last holder and its holder-change count
 *   [ticker]  const void *rpc_current_frame_slot(const PyThreadState *copy, const PyThreadState *real)
 *             address of `real`'s current-frame pointer, given a fault-free copy of it
 *   [gil]     long  rpc_code_lasti(PyCodeObject *, uint64_t instr)  code-unit index, -1 if invalid
 *   [gil]     int   rpc_verify_layout(char *err, size_t errlen)  0 ok, -1 mismatch (err filled)
 */
#ifndef RINGPROF_COMPAT_H
#define RINGPROF_COMPAT_H

#ifndef Py_BUILD_CORE_MODULE
#define Py_BUILD_CORE_MODULE 1
#endif
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { RPC_FRAME_PYTHON = 0, RPC_FRAME_SHIM = 1, RPC_FRAME_BAD = 2 };

/* A code unit (opcode + oparg) is two bytes in every supported version; the
 * version headers that can see _Py_CODEUNIT assert it. */
#define RPC_CODEUNIT_SIZE 2

/* Shared by every version since 3.11: the instruction pointer is an address
 * inside the code object's inline bytecode (co_code_adaptive).  LASTI is
 * derived arithmetically from the two raw pointers the handler recorded. */
static inline long rpc_lasti_from(PyCodeObject *co, uint64_t instr)
{
    uint64_t start = (uint64_t)(uintptr_t)co + offsetof(PyCodeObject, co_code_adaptive);
    uint64_t end = start + (uint64_t)Py_SIZE(co) * RPC_CODEUNIT_SIZE;
    if (instr < start || instr >= end || (instr - start) % RPC_CODEUNIT_SIZE) {
        return -1;
    }
    return (long)((instr - start) / RPC_CODEUNIT_SIZE);
}

/* A pointer the handler may follow: non-NULL, aligned, inside the canonical
 * user-space range.  Cheap plausibility, not proof; the walk is also bounded. */
static inline int rpc_ptr_ok(const void *p, uintptr_t align)
{
    uintptr_t v = (uintptr_t)p;
    return v >= 4096 && (v & (align - 1)) == 0 && v < ((uintptr_t)1 << 47);
}

/* Builds whose frames the walk cannot read (setup.py skips the extension on
 * them and says why; ringprof then imports, exports and views, but cannot
 * sample).  Free-threaded builds keep per-thread bytecode copies and tag every
 * stack reference differently; stack-ref debug builds replace the pointers
 * with table indices. */
#ifdef Py_GIL_DISABLED
#error "ringprof does not support free-threaded CPython builds yet"
#endif
#ifdef Py_STACKREF_DEBUG
#error "ringprof does not support CPython stack-ref debug builds"
#endif

#if PY_VERSION_HEX >= 0x03100000
#error "ringprof: this CPython is newer than 3.15, whose frame layout ringprof knows; add csrc/compat/py3XX.h"
#elif PY_VERSION_HEX >= 0x030F0000
#include "py315.h"
#elif PY_VERSION_HEX >= 0x030E0000
#include "py314.h"
#elif PY_VERSION_HEX >= 0x030D0000
#include "py313.h"
#elif PY_VERSION_HEX >= 0x030C0000
#include "py312.h"
#elif PY_VERSION_HEX >= 0x030B0000
#include "py311.h"
#else
#error "ringprof supports CPython 3.11 to 3.15"
#endif

/* [handler] A frame owned by a generator, coroutine or async generator is
 * embedded in that object (gi_iframe, the same place for all three). */
static inline int rpc_frame_is_generator(const void *f)
{
    return ((const _PyInterpreterFrame *)f)->owner == FRAME_OWNED_BY_GENERATOR;
}

/* [handler] 1 if the object around generator frame f is a generator,
 * coroutine or async generator that is executing now.  Reads that object's
 * header in place: call it only for a frame the walk trusts (see sampler.c).
 * A freed generator keeps its type but never the EXECUTING state (it cannot
 * die while running); a suspended one is not on any thread's chain. */
static inline int rpc_generator_executing(const void *f)
{
    const PyGenObject *g = (const PyGenObject *)(const void *)((const char *)f - offsetof(PyGenObject, gi_iframe));
    if (!rpc_ptr_ok(g, 8)) {
        return 0;
    }
    const PyTypeObject *t = ((const PyObject *)g)->ob_type;
    return (t == &PyGen_Type || t == &PyCoro_Type || t == &PyAsyncGen_Type) && g->gi_frame_state == FRAME_EXECUTING;
}

/* [handler] The frame of the generator whose gi_exc_state is `e`, an entry of
 * this thread's exc_info chain (known to be a live _PyErr_StackItem: see
 * rpc_exc_head), if that generator is executing; else NULL.  An entry need
 * not belong to a generator (Cython coroutines push their own), and only `e`
 * itself is known to be mapped, so memory around it is read only where it
 * shares e's 4 KiB page (pages are at least that large): the generator fields
 * after e and the frame header must be on it (else NULL: the walk copies that
 * frame, about 1 generator in 40), and
 *  - the owner's type, 32 bytes before e: if it is generator, coroutine or
 *    async generator, the whole object is that live generator's, and
 *    *is_generator is set;
 *  - else, when e is within 32 bytes of its page's start (1 entry in 128),
 *    the owner's type cannot be read: the frame is returned as readable
 *    (frame state checked), and *is_generator stays 0.
 * So no read leaves e's page even if an entry that is not a generator's
 * happens to hold a generator type's address where a generator's type is. */
#ifdef RPC_HAS_EXC_CHAIN
static inline const void *rpc_exc_generator_frame(const void *e, int *is_generator)
{
    uintptr_t at = (uintptr_t)e;
    uintptr_t gen_at = at - offsetof(PyGenObject, gi_exc_state);
    uintptr_t type_at = gen_at + offsetof(PyObject, ob_type);
    uintptr_t frame_at = gen_at + offsetof(PyGenObject, gi_iframe);
    const PyGenObject *g = (const PyGenObject *)gen_at;
    *is_generator = 0;
    if (!rpc_ptr_ok(e, 8) || ((frame_at + RPC_FRAME_HEADER_SIZE - 1) >> 12) != (at >> 12)) {
        return NULL;
    }
    if ((type_at >> 12) == (at >> 12)) {
        const PyTypeObject *t = *(const PyTypeObject *const *)type_at;
        if (t != &PyGen_Type && t != &PyCoro_Type && t != &PyAsyncGen_Type) {
            return NULL;
        }
        *is_generator = 1;
    }
    return g->gi_frame_state == FRAME_EXECUTING ? (const void *)frame_at : NULL;
}
#endif
#ifndef RPC_HAS_SHIM_OFFSET
/* Only 3.12 needs it: 3.11 has no entry frames, 3.13+ trust the chain after the leaf. */
static inline const void *rpc_innermost_shim(PyThreadState *ts, long offset)
{
    (void)ts;
    (void)offset;
    return NULL;
}
static inline long rpc_measure_shim_offset(PyThreadState *ts) { (void)ts; return 0; }
#endif
#ifndef RPC_HAS_EXC_CHAIN
/* No exc_info chain proof for this version: generator frames outside the
 * data stack follow the other rules of the walk. */
static inline const void *rpc_exc_head(PyThreadState *ts) { (void)ts; return NULL; }
static inline const void *rpc_exc_base(PyThreadState *ts) { (void)ts; return NULL; }
static inline const void *rpc_exc_previous(const void *e) { (void)e; return NULL; }
static inline const void *rpc_exc_generator_frame(const void *e, int *is_generator)
{
    (void)e;
    *is_generator = 0;
    return NULL;
}
#endif

/* [handler] The live parts of the thread's datastack chunks, newest first:
 * [data, datastack_top) of the current chunk, [data, data + top) of older
 * ones.  Chunk headers are always live (datastack_chunk moves back before a
 * chunk is freed), so reading them is safe.  A frame header inside one of
 * these ranges lies in mapped memory; anything else (a generator's frame on
 * the heap, an entry shim on the C stack, or a stale pointer: CPython 3.11/3.12
 * publish tstate->cframe before initialising its current_frame, and every
 * version frees a chunk before current_frame leaves it) must be read through
 * a fault-free copy.  Returns the number of ranges filled. */
typedef struct rpc_range {
    uintptr_t lo, hi;
} rpc_range;

static inline int rpc_live_ranges(PyThreadState *ts, rpc_range *out, int max)
{
    const _PyStackChunk *c = ts->datastack_chunk;
    uintptr_t top = (uintptr_t)ts->datastack_top;
    int n = 0;
    while (n < max && rpc_ptr_ok(c, 8)) {
        uintptr_t lo = (uintptr_t)&c->data[0];
        uintptr_t end = (uintptr_t)c + c->size;
        uintptr_t hi = n == 0 ? top : lo + c->top * sizeof(PyObject *);
        if (hi > end || hi < lo) {
            hi = n == 0 ? end : lo; /* mid-push/pop: fall back to a safe bound */
        }
        out[n].lo = lo;
        out[n].hi = hi;
        n++;
        c = c->previous;
    }
    return n;
}

static inline int rpc_in_ranges(const rpc_range *r, int n, const void *f)
{
    uintptr_t a = (uintptr_t)f;
    for (int i = 0; i < n; i++) {
        if (a >= r[i].lo && a + RPC_FRAME_HEADER_SIZE <= r[i].hi) {
            return 1;
        }
    }
    return 0;
}

/* [handler] rpc_live_ranges covers the newest `max` chunks only, and a deep
 * recursion has far more (a 16 KiB chunk holds ~150 frames).  Frames in older
 * chunks must not each cost a fault-free copy: that is a syscall (~2 us on a
 * VM), so a 19,000-frame walk would outlast the sampling interval and the
 * thread would stop making progress.  rpc_chunk_after(ts, n) is the first
 * chunk the ranges do not cover; rpc_in_older_chunks checks a frame against it
 * and older chunks, moving *cursor to the chunk that holds it.  Frames only get
 * older along a walk, so a whole walk costs O(frames + chunks). */
typedef _PyStackChunk rpc_chunk;

static inline const rpc_chunk *rpc_chunk_after(PyThreadState *ts, int skip)
{
    const rpc_chunk *c = ts->datastack_chunk;
    for (int i = 0; i < skip && rpc_ptr_ok(c, 8); i++) {
        c = c->previous;
    }
    return rpc_ptr_ok(c, 8) ? c : NULL;
}

static inline int rpc_in_older_chunks(const rpc_chunk **cursor, const void *f)
{
    uintptr_t a = (uintptr_t)f;
    uint32_t guard = 0;
    for (const rpc_chunk *c = *cursor; rpc_ptr_ok(c, 8) && guard < (1u << 20); c = c->previous, guard++) {
        uintptr_t lo = (uintptr_t)&c->data[0];
        uintptr_t end = (uintptr_t)c + c->size;
        uintptr_t hi = lo + c->top * sizeof(PyObject *);
        if (hi > end || hi < lo) {
            hi = lo;
        }
        if (a >= lo && a + RPC_FRAME_HEADER_SIZE <= hi) {
            *cursor = c;
            return 1;
        }
    }
    return 0;
}

#endif /* RINGPROF_COMPAT_H */
