/* compat/py311.h -- CPython 3.11 (see compat.h for the contract).
 *  chain root: tstate->cframe->current_frame (cframe may be NULL while a thread initialises)
 *  frame: _PyInterpreterFrame {f_code, previous, prev_instr, owner}; no shim frames
 *  owners: THREAD=0, GENERATOR=1, FRAME_OBJECT=2
 *  prev_instr: the code unit *before* the next instruction; `code - 1` for a
 *  frame that has not started (LASTI -1 => incomplete, dropped at drain). */
#include "internal/pycore_frame.h"

_Static_assert(sizeof(_Py_CODEUNIT) == RPC_CODEUNIT_SIZE, "code unit size changed");

/* Bytes of a frame the walk reads (everything before the locals). */
#define RPC_FRAME_HEADER_SIZE offsetof(_PyInterpreterFrame, localsplus)

static inline PyThreadState *rpc_this_tstate(void) { return PyGILState_GetThisThreadState(); }
/* _PyThreadState_UncheckedGet() is a relaxed atomic load of the GIL holder. */
static inline int rpc_holds_gil(PyThreadState *ts) { return _PyThreadState_UncheckedGet() == ts; }
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
 * sampler.c: generator frames outside the data stack are read in place when
 * found on it).  gen_send_ex2 -- the only way a generator's frame runs on
 * 3.11, in an eval loop of its own -- links the frame to the caller's frame,
 * pushes gi_exc_state on tstate->exc_info, runs the frame, pops the entry and
 * sets its previous_item back to NULL, then unlinks the frame.  Every entry
 * on the chain is alive (CPython follows it whenever an exception is raised),
 * and an entry off the chain has a NULL previous_item, so a push seen
 * half-done ends the chain early.  Other objects may push entries too
 * (Cython coroutines): the walk checks which are generators
 * (rpc_exc_generator_frame in compat.h). */
#define RPC_HAS_EXC_CHAIN 1
static inline const void *rpc_exc_head(PyThreadState *ts) { return ts->exc_info; }
static inline const void *rpc_exc_base(PyThreadState *ts) { return &ts->exc_state; }
static inline const void *rpc_exc_previous(const void *e) { return ((const _PyErr_StackItem *)e)->previous_item; }
/* The chain ends at NULL (3.15 adds a sentinel). */
static inline const void *rpc_chain_end(PyThreadState *ts) { (void)ts; return NULL; }
static inline const void *rpc_frame_previous(const void *f) { return ((const _PyInterpreterFrame *)f)->previous; }
static inline int rpc_frame_kind(const void *f)
{
    char owner = ((const _PyInterpreterFrame *)f)->owner;
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

/* [ticker] The thread state holding the GIL (attached: running Python), or
 * NULL.  3.11 keeps it in a process-wide atomic, readable from any thread. */
static inline PyThreadState *rpc_gil_holder(PyInterpreterState *interp)
{
    (void)interp;
    return _PyThreadState_UncheckedGet();
}

/* [ticker] The GIL's last holder (whether or not it holds it now) and its
 * switch count, which take_gil increments whenever the holder changes: if the
 * count is unchanged and the last holder is not thread T, T has not taken the
 * GIL -- run Python -- in between.  The count is read first (see wall_tick). */
#include "internal/pycore_runtime.h"
static inline PyThreadState *rpc_gil_switches(PyInterpreterState *interp, unsigned long *switches)
{
    (void)interp;
    struct _gil_runtime_state *gil = &_PyRuntime.ceval.gil;
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
