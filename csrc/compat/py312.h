/* compat/py312.h -- CPython 3.12 (see compat.h for the contract).
 *  chain root: tstate->cframe->current_frame
 *  frame: _PyInterpreterFrame {f_code, previous, prev_instr, owner}
 *  owners: THREAD=0, GENERATOR=1, FRAME_OBJECT=2, CSTACK=3 (the entry "shim"
 *  frame pushed by _PyEval_EvalFrameDefault; its f_code is the interpreter
 *  trampoline, a real code object that must not show up in profiles). */
#include "internal/pycore_frame.h"
#include "internal/pycore_pystate.h" /* _PyThreadState_GetCurrent */

_Static_assert(sizeof(_Py_CODEUNIT) == RPC_CODEUNIT_SIZE, "code unit size changed");

/* Bytes of a frame the walk reads (everything before the locals). */
#define RPC_FRAME_HEADER_SIZE offsetof(_PyInterpreterFrame, localsplus)

static inline PyThreadState *rpc_this_tstate(void) { return PyGILState_GetThisThreadState(); }
/* Reads the _Py_tss_tstate thread-local (static TLS in libpython): NULL when detached. */
static inline int rpc_holds_gil(PyThreadState *ts) { return _PyThreadState_GetCurrent() == ts; }
static inline int rpc_finalizing(void) { return _Py_IsFinalizing(); }

static inline const void *rpc_first_frame(PyThreadState *ts)
{
    _PyCFrame *cf = ts->cframe;
    if (!rpc_ptr_ok(cf, 8)) {
        return NULL;
    }
    return cf->current_frame;
}
/* 3.11/3.12 publish tstate->cframe before setting its current_frame; in that
 * window the right stack is the enclosing eval loop's.  Returns the address of
 * that cframe's current_frame slot (the caller must read it fault-free: the
 * previous link itself may not be initialised yet), or NULL. */
static inline const void *rpc_outer_frame_slot(PyThreadState *ts)
{
    _PyCFrame *cf = ts->cframe;
    if (!rpc_ptr_ok(cf, 8) || !rpc_ptr_ok(cf->previous, 8)) {
        return NULL;
    }
    return &cf->previous->current_frame;
}
/* [handler] The thread's chain of executing generators (see the walk in
 * sampler.c: it is how generator frames outside the data stack are read in
 * place on 3.12).  gen_send_ex2, SEND_GEN and FOR_ITER_GEN push a generator's
 * gi_exc_state on tstate->exc_info before its frame runs; YIELD_VALUE and
 * clear_gen_frame pop it before the frame is unlinked.  The chain ends at
 * &tstate->exc_state; every entry in it is alive (CPython itself follows it
 * whenever an exception is raised or sys.exc_info() is called), and an
 * entry's previous_item is NULL whenever it is off the chain, so a push seen
 * half-done ends the chain early instead of linking to garbage.  Other
 * objects may push entries too (Cython coroutines, greenlet): the walk
 * checks which entries are generators (rpc_exc_generator_frame in compat.h). */
#define RPC_HAS_EXC_CHAIN 1
static inline const void *rpc_exc_head(PyThreadState *ts) { return ts->exc_info; }
static inline const void *rpc_exc_base(PyThreadState *ts) { return &ts->exc_state; }
static inline const void *rpc_exc_previous(const void *e) { return ((const _PyErr_StackItem *)e)->previous_item; }
/* [handler] The entry ("shim") frame of the innermost eval loop.  Both it and
 * that loop's cframe are locals of _PyEval_EvalFrameDefault, so they sit at a
 * fixed distance from each other, measured once at start on a settled chain
 * (rpc_measure_shim_offset).  tstate->cframe is the innermost loop's cframe
 * while that C frame is live (published in its prologue, put back before it
 * returns), or the root cframe inside the thread state when no loop runs:
 * cframe + offset is then inside a live C frame of this thread, so the walk
 * may read it in place (its fields may not be written yet in the prologue's
 * window, which the walk's other checks catch). */
#define RPC_HAS_SHIM_OFFSET 1
static inline const void *rpc_innermost_shim(PyThreadState *ts, long offset)
{
    const _PyCFrame *cf = ts->cframe;
    if (offset == 0 || cf == &ts->root_cframe || !rpc_ptr_ok(cf, 8)) {
        return NULL;
    }
    return (const char *)cf + offset;
}
/* [gil] That distance, measured on the calling thread: its innermost eval loop
 * is suspended in this call, so the chain from its current frame to its entry
 * frame is settled and alive.  0 if it cannot be found. */
static inline long rpc_measure_shim_offset(PyThreadState *ts)
{
    const _PyCFrame *cf = ts->cframe;
    if (cf == &ts->root_cframe || !rpc_ptr_ok(cf, 8)) {
        return 0;
    }
    const _PyInterpreterFrame *f = cf->current_frame;
    for (int i = 0; f != NULL && i < 100000; i++, f = f->previous) {
        if (f->owner == FRAME_OWNED_BY_CSTACK) {
            return (long)((const char *)f - (const char *)cf);
        }
    }
    return 0;
}
/* The chain ends at NULL (3.15 adds a sentinel). */
static inline const void *rpc_chain_end(PyThreadState *ts) { (void)ts; return NULL; }
static inline const void *rpc_frame_previous(const void *f) { return ((const _PyInterpreterFrame *)f)->previous; }
static inline int rpc_frame_kind(const void *f)
{
    char owner = ((const _PyInterpreterFrame *)f)->owner;
    if (owner == FRAME_OWNED_BY_CSTACK) {
        return RPC_FRAME_SHIM;
    }
    return (owner >= 0 && owner <= 2) ? RPC_FRAME_PYTHON : RPC_FRAME_BAD;
}
static inline uint64_t rpc_frame_code(const void *f) { return (uint64_t)(uintptr_t)((const _PyInterpreterFrame *)f)->f_code; }
static inline uint64_t rpc_frame_instr(const void *f) { return (uint64_t)(uintptr_t)((const _PyInterpreterFrame *)f)->prev_instr; }

static inline long rpc_code_lasti(PyCodeObject *co, uint64_t instr)
{
    long lasti = rpc_lasti_from(co, instr);
    return lasti < co->_co_firsttraceable ? -1 : lasti;
}
static inline int rpc_verify_layout(char *err, size_t errlen) { (void)err; (void)errlen; return 0; }

/* [ticker] The thread state holding interp's GIL (attached: running Python),
 * or NULL.  Read from another thread: two relaxed loads of the GIL itself
 * (the current-tstate variable is thread-local since 3.12).  last_holder may
 * name a thread state being deleted: it is compared, never dereferenced. */
#include "internal/pycore_interp.h"
static inline PyThreadState *rpc_gil_holder(PyInterpreterState *interp)
{
    struct _gil_runtime_state *gil = interp->ceval.gil;
    if (gil == NULL || _Py_atomic_load_relaxed(&gil->locked) <= 0) {
        return NULL;
    }
    return (PyThreadState *)_Py_atomic_load_relaxed(&gil->last_holder);
}
/* [ticker] The GIL's last holder (whether or not it holds it now) and its
 * switch count, which take_gil increments whenever the holder changes: if the
 * count is unchanged and the last holder is not thread T, T has not taken the
 * GIL -- run Python -- in between.  The count is read first (see wall_tick). */
static inline PyThreadState *rpc_gil_switches(PyInterpreterState *interp, unsigned long *switches)
{
    struct _gil_runtime_state *gil = interp->ceval.gil;
    if (gil == NULL) {
        *switches = 0;
        return NULL;
    }
    *switches = __atomic_load_n(&gil->switch_number, __ATOMIC_ACQUIRE);
    return (PyThreadState *)_Py_atomic_load_relaxed(&gil->last_holder);
}

/* [ticker] Where the thread's current-frame pointer lives, computed from a
 * copy of its PyThreadState (`copy`) without dereferencing anything: here
 * copy->cframe (an address on that thread's C stack) + the field offset.  The
 * caller reads it fault-free. */
static inline const void *rpc_current_frame_slot(const PyThreadState *copy, const PyThreadState *real)
{
    (void)real;
    if (!rpc_ptr_ok(copy->cframe, 8)) {
        return NULL;
    }
    return (const char *)copy->cframe + offsetof(_PyCFrame, current_frame);
}
