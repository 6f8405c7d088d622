/* compat/debug_offsets.h -- check our compiled-in layout against the running
 * interpreter's own description of it (CPython 3.13+, see compat.h for the
 * contract).  Included by py313.h, py314.h and py315.h after their CPython
 * headers.
 *
 * SIGNAL-SAFETY CONTRACT: nothing here runs in the signal handler; it runs at
 * import and at every start, with the GIL held.
 *
 * Why: ringprof is compiled against one patch release's headers and may run on
 * another (a wheel built for 3.14.4 on 3.14.5, a distribution patch, a debug
 * or free-threaded build).  Offsets have moved inside a minor series before.
 * Since 3.13 the interpreter publishes the offsets out-of-process debuggers
 * need in _PyRuntime.debug_offsets.  Every offset the handler's walk and the
 * drain use is compared with it; any difference refuses to start with one
 * line naming the field, instead of walking a layout that is not there.
 *
 * The compared structure is passed in, so a test can hand the check a copy
 * with one field changed and see the refusal (rpc_verify_offsets_of).
 */
#ifndef RINGPROF_COMPAT_DEBUG_OFFSETS_H
#define RINGPROF_COMPAT_DEBUG_OFFSETS_H

/* The walk reads datastack_top and datastack_limit through their position
 * right behind datastack_chunk, which the debug offsets do describe. */
_Static_assert(offsetof(PyThreadState, datastack_top) == offsetof(PyThreadState, datastack_chunk) + sizeof(void *),
               "datastack_top no longer follows datastack_chunk");

#define RPC_CHECK_OFFSET(field, expected)                                                    \
    if (d->field != (uint64_t)(expected)) {                                                  \
        snprintf(err, errlen, "CPython layout mismatch: %s is %llu, ringprof expects %llu", \
                 #field, (unsigned long long)d->field, (unsigned long long)(expected));      \
        return -1;                                                                           \
    }

static inline int rpc_verify_offsets_of(const _Py_DebugOffsets *d, char *err, size_t errlen)
{
    if (memcmp(d->cookie, _Py_Debug_Cookie, sizeof(d->cookie)) != 0) {
        snprintf(err, errlen, "CPython debug offsets cookie not found: unsupported interpreter build");
        return -1;
    }
    if ((d->version >> 16) != (PY_VERSION_HEX >> 16)) {
        snprintf(err, errlen, "CPython version mismatch: running %llx, ringprof built for %x",
                 (unsigned long long)d->version, PY_VERSION_HEX);
        return -1;
    }
    if (d->free_threaded) {
        snprintf(err, errlen, "free-threaded CPython builds are not supported yet");
        return -1;
    }
    RPC_CHECK_OFFSET(thread_state.size, sizeof(PyThreadState));
    RPC_CHECK_OFFSET(thread_state.interp, offsetof(PyThreadState, interp));
    RPC_CHECK_OFFSET(thread_state.current_frame, offsetof(PyThreadState, current_frame));
    RPC_CHECK_OFFSET(thread_state.thread_id, offsetof(PyThreadState, thread_id));
    RPC_CHECK_OFFSET(thread_state.native_thread_id, offsetof(PyThreadState, native_thread_id));
    RPC_CHECK_OFFSET(thread_state.datastack_chunk, offsetof(PyThreadState, datastack_chunk));
#if PY_VERSION_HEX >= 0x030F0000
    RPC_CHECK_OFFSET(thread_state.base_frame, offsetof(PyThreadState, base_frame));
#endif
    RPC_CHECK_OFFSET(interpreter_frame.size, sizeof(_PyInterpreterFrame));
    RPC_CHECK_OFFSET(interpreter_frame.previous, offsetof(_PyInterpreterFrame, previous));
    RPC_CHECK_OFFSET(interpreter_frame.executable, offsetof(_PyInterpreterFrame, f_executable));
    RPC_CHECK_OFFSET(interpreter_frame.instr_ptr, offsetof(_PyInterpreterFrame, instr_ptr));
    RPC_CHECK_OFFSET(interpreter_frame.localsplus, offsetof(_PyInterpreterFrame, localsplus));
    RPC_CHECK_OFFSET(interpreter_frame.owner, offsetof(_PyInterpreterFrame, owner));
    RPC_CHECK_OFFSET(code_object.size, sizeof(PyCodeObject));
    RPC_CHECK_OFFSET(code_object.co_code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
    RPC_CHECK_OFFSET(code_object.firstlineno, offsetof(PyCodeObject, co_firstlineno));
    RPC_CHECK_OFFSET(code_object.qualname, offsetof(PyCodeObject, co_qualname));
    RPC_CHECK_OFFSET(code_object.filename, offsetof(PyCodeObject, co_filename));
    RPC_CHECK_OFFSET(code_object.linetable, offsetof(PyCodeObject, co_linetable));
    /* The wall-mode tick thread reads the GIL holder (rpc_gil_holder). */
    RPC_CHECK_OFFSET(interpreter_state.ceval_gil, offsetof(PyInterpreterState, ceval.gil));
    RPC_CHECK_OFFSET(interpreter_state.gil_runtime_state_locked, offsetof(PyInterpreterState, _gil.locked));
    RPC_CHECK_OFFSET(interpreter_state.gil_runtime_state_holder, offsetof(PyInterpreterState, _gil.last_holder));
    return 0;
}
#undef RPC_CHECK_OFFSET

static inline int rpc_verify_layout(char *err, size_t errlen)
{
    return rpc_verify_offsets_of(&_PyRuntime.debug_offsets, err, errlen);
}

/* [gil] Test hook: the check on a copy of the running interpreter's offsets
 * with one 8-byte field (at byte offset `at`) replaced by `value`. */
#define RPC_HAS_DEBUG_OFFSETS 1
static inline int rpc_verify_layout_with(size_t at, uint64_t value, char *err, size_t errlen)
{
    _Py_DebugOffsets copy = _PyRuntime.debug_offsets;
    if (at % sizeof(uint64_t) || at + sizeof(uint64_t) > sizeof(copy)) {
        snprintf(err, errlen, "field offset out of range");
        return -2;
    }
    memcpy((char *)&copy + at, &value, sizeof(value));
    return rpc_verify_offsets_of(&copy, err, errlen);
}

#endif /* RINGPROF_COMPAT_DEBUG_OFFSETS_H */
