/* compat/gil_state.h -- what the wall-mode tick thread reads of another
 * thread, the same for CPython 3.13, 3.14 and 3.15 (see compat.h for the
 * contract).  Included by py313.h, py314.h and py315.h after their CPython
 * headers; the GIL fields' offsets are checked against the running
 * interpreter's debug offsets (debug_offsets.h).
 *
 * SIGNAL-SAFETY CONTRACT: nothing here runs in the signal handler.  These are
 * [ticker] functions: relaxed loads of the main interpreter's GIL (which lives
 * as long as the runtime) and address arithmetic; another thread's pointers
 * are compared or computed, never dereferenced.
 */
#ifndef RINGPROF_COMPAT_GIL_STATE_H
#define RINGPROF_COMPAT_GIL_STATE_H

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

#endif /* RINGPROF_COMPAT_GIL_STATE_H */
