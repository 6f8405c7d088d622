/* compat/py313.h -- CPython 3.13 (see compat.h for the contract).
 *  chain root: tstate->current_frame (cframe is gone)
 *  frame: _PyInterpreterFrame {f_executable, previous, instr_ptr, owner}
 *  f_executable is "code object or None" (None in the CSTACK shim frame)
 *  instr_ptr: the instruction currently executing
 *  owners: THREAD=0, GENERATOR=1, FRAME_OBJECT=2, CSTACK=3 (shim)
 *  The interpreter publishes its own struct offsets in _PyRuntime.debug_offsets;
 *  debug_offsets.h compares them with the offsets we were compiled with, so a
 *  debug build or a patched distribution is refused instead of mis-walked. */
#include "internal/pycore_frame.h"
#include "internal/pycore_runtime.h"

_Static_assert(sizeof(_Py_CODEUNIT) == RPC_CODEUNIT_SIZE, "code unit size changed");

/* Bytes of a frame the walk reads (everything before the locals). */
#define RPC_FRAME_HEADER_SIZE offsetof(_PyInterpreterFrame, localsplus)

static inline PyThreadState *rpc_this_tstate(void) { return PyGILState_GetThisThreadState(); }
static inline int rpc_holds_gil(PyThreadState *ts) { return PyThreadState_GetUnchecked() == ts; }
static inline int rpc_finalizing(void) { return Py_IsFinalizing(); }

static inline const void *rpc_first_frame(PyThreadState *ts) { return ts->current_frame; }
/* 3.13 publishes current_frame only once the frame is linked: no window. */
static inline const void *rpc_outer_frame_slot(PyThreadState *ts) { (void)ts; return NULL; }
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
static inline uint64_t rpc_frame_code(const void *f) { return (uint64_t)(uintptr_t)((const _PyInterpreterFrame *)f)->f_executable; }
static inline uint64_t rpc_frame_instr(const void *f) { return (uint64_t)(uintptr_t)((const _PyInterpreterFrame *)f)->instr_ptr; }

static inline long rpc_code_lasti(PyCodeObject *co, uint64_t instr)
{
    long lasti = rpc_lasti_from(co, instr);
    return lasti < co->_co_firsttraceable ? -1 : lasti;
}

/* [ticker] The thread state holding interp's GIL (attached: running Python),
 * or NULL: two relaxed loads of the GIL itself, from any thread.  last_holder
 * may name a thread state being deleted: it is compared, never dereferenced.
 * The offsets are checked against the debug offsets (debug_offsets.h). */
#include "internal/pycore_interp.h"
static inline PyThreadState *rpc_gil_holder(PyInterpreterState *interp)
{
    struct _gil_runtime_state *gil = interp->ceval.gil;
    if (gil == NULL || _Py_atomic_load_int_relaxed(&gil->locked) <= 0) {
        return NULL;
    }
    return (PyThreadState *)_Py_atomic_load_ptr_relaxed(&gil->last_holder);
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
    return (PyThreadState *)_Py_atomic_load_ptr_relaxed(&gil->last_holder);
}

/* [ticker] Where the thread's current-frame pointer lives: a field of the
 * thread state itself (read fault-free by the caller). */
static inline const void *rpc_current_frame_slot(const PyThreadState *copy, const PyThreadState *real)
{
    (void)copy;
    return (const char *)real + offsetof(PyThreadState, current_frame);
}

#include "debug_offsets.h"
