/* compat/py313.h -- CPython 3.13 (see compat.h for the contract).
 *  chain root: tstate->current_frame (cframe is gone)
 *  frame: _PyInterpreterFrame {f_executable, previous, instr_ptr, owner}
 *  f_executable is "code object or None" (None in the CSTACK shim frame)
 *  instr_ptr: the instruction currently executing
 *  owners: THREAD=0, GENERATOR=1, FRAME_OBJECT=2, CSTACK=3 (shim)
 *  The interpreter publishes its own struct offsets in _PyRuntime.debug_offsets;
 *  rpc_verify_layout compares them with the offsets we were compiled with, so a
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

#define RPC_CHECK_OFFSET(field, expected)                                                    \
    if (_PyRuntime.debug_offsets.field != (uint64_t)(expected)) {                            \
        snprintf(err, errlen, "CPython layout mismatch: %s is %llu, ringprof expects %llu", \
                 #field, (unsigned long long)_PyRuntime.debug_offsets.field,                 \
                 (unsigned long long)(expected));                                            \
        return -1;                                                                           \
    }

static inline int rpc_verify_layout(char *err, size_t errlen)
{
    if (memcmp(_PyRuntime.debug_offsets.cookie, _Py_Debug_Cookie, sizeof(_PyRuntime.debug_offsets.cookie)) != 0) {
        snprintf(err, errlen, "CPython debug offsets cookie not found: unsupported interpreter build");
        return -1;
    }
    if ((_PyRuntime.debug_offsets.version >> 16) != (PY_VERSION_HEX >> 16)) {
        snprintf(err, errlen, "CPython version mismatch: running %llx, ringprof built for %x",
                 (unsigned long long)_PyRuntime.debug_offsets.version, PY_VERSION_HEX);
        return -1;
    }
    RPC_CHECK_OFFSET(free_threaded, 0);
    RPC_CHECK_OFFSET(thread_state.current_frame, offsetof(PyThreadState, current_frame));
    RPC_CHECK_OFFSET(thread_state.interp, offsetof(PyThreadState, interp));
    RPC_CHECK_OFFSET(thread_state.native_thread_id, offsetof(PyThreadState, native_thread_id));
    RPC_CHECK_OFFSET(interpreter_frame.size, sizeof(_PyInterpreterFrame));
    RPC_CHECK_OFFSET(interpreter_frame.previous, offsetof(_PyInterpreterFrame, previous));
    RPC_CHECK_OFFSET(interpreter_frame.executable, offsetof(_PyInterpreterFrame, f_executable));
    RPC_CHECK_OFFSET(interpreter_frame.instr_ptr, offsetof(_PyInterpreterFrame, instr_ptr));
    RPC_CHECK_OFFSET(interpreter_frame.owner, offsetof(_PyInterpreterFrame, owner));
    RPC_CHECK_OFFSET(code_object.co_code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
    RPC_CHECK_OFFSET(code_object.firstlineno, offsetof(PyCodeObject, co_firstlineno));
    RPC_CHECK_OFFSET(code_object.qualname, offsetof(PyCodeObject, co_qualname));
    return 0;
}
#undef RPC_CHECK_OFFSET
