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

#include "gil_state.h"
#include "debug_offsets.h"
