/* compat/py315.h -- CPython 3.15 (see compat.h for the contract).
 *  chain root: tstate->current_frame; the chain now ends at a sentinel, the
 *  thread state's own base_frame (embedded in _PyThreadStateImpl, so outside
 *  the datastack: stopping there saves a fault-free copy per sample)
 *  frame: _PyInterpreterFrame {f_executable, previous, instr_ptr, owner} as in
 *  3.14; f_executable is a tagged _PyStackRef (tag constants changed again:
 *  Py_TAG_BITS = 3), so the object pointer is bits & ~7
 *  owners: THREAD=0, GENERATOR=1, FRAME_OBJECT=2, INTERPRETER=3 (C entry frames
 *  and the base frame); FRAME_OWNED_BY_CSTACK is gone.
 *  _PyFrame_SafeGetCode() exists for in-process profilers, but it dereferences
 *  the code object (PyCode_Check): the handler never does; the drain checks.
 *  Offsets are checked against _PyRuntime.debug_offsets (debug_offsets.h). */
#include "internal/pycore_interpframe.h"
#include "internal/pycore_frame.h" /* FRAME_EXECUTING */
#include "internal/pycore_runtime.h"

_Static_assert(sizeof(_Py_CODEUNIT) == RPC_CODEUNIT_SIZE, "code unit size changed");
_Static_assert(FRAME_OWNED_BY_INTERPRETER == 3, "frame owners renumbered");
_Static_assert(Py_TAG_BITS <= 7, "stack-ref tags grew");

/* Bytes of a frame the walk reads (everything before the locals). */
#define RPC_FRAME_HEADER_SIZE offsetof(_PyInterpreterFrame, localsplus)
/* Objects are at least 8-aligned; every stack-ref tag fits below that. */
#define RPC_STACKREF_TAG_MASK ((uintptr_t)7)

static inline PyThreadState *rpc_this_tstate(void) { return PyGILState_GetThisThreadState(); }
static inline int rpc_holds_gil(PyThreadState *ts) { return PyThreadState_GetUnchecked() == ts; }
static inline int rpc_finalizing(void) { return Py_IsFinalizing(); }

static inline const void *rpc_first_frame(PyThreadState *ts) { return ts->current_frame; }
/* current_frame is published only once the frame is linked: no window. */
static inline const void *rpc_outer_frame_slot(PyThreadState *ts) { (void)ts; return NULL; }
static inline const void *rpc_chain_end(PyThreadState *ts) { return ts->base_frame; }
static inline const void *rpc_frame_previous(const void *f) { return ((const _PyInterpreterFrame *)f)->previous; }
static inline int rpc_frame_kind(const void *f)
{
    char owner = ((const _PyInterpreterFrame *)f)->owner;
    if (owner == FRAME_OWNED_BY_INTERPRETER) {
        return RPC_FRAME_SHIM;
    }
    return (owner >= 0 && owner < FRAME_OWNED_BY_INTERPRETER) ? RPC_FRAME_PYTHON : RPC_FRAME_BAD;
}
static inline uint64_t rpc_frame_code(const void *f)
{
    return (uint64_t)(((const _PyInterpreterFrame *)f)->f_executable.bits & ~RPC_STACKREF_TAG_MASK);
}
static inline uint64_t rpc_frame_instr(const void *f) { return (uint64_t)(uintptr_t)((const _PyInterpreterFrame *)f)->instr_ptr; }

static inline long rpc_code_lasti(PyCodeObject *co, uint64_t instr)
{
    long lasti = rpc_lasti_from(co, instr);
    return lasti < co->_co_firsttraceable ? -1 : lasti;
}

#include "gil_state.h"
#include "debug_offsets.h"
