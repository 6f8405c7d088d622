/* codes.c -- deferred code-object deaths and pointer validation; see codes.h. */
#define _GNU_SOURCE
#include "compat/compat.h"

#include "codes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

typedef struct parked {
    PyObject *code;
    uint64_t seq;
} parked;

static parked *g_parked;
static size_t g_nparked, g_capparked, g_head; /* [g_head, g_nparked) are live entries */
static uint64_t g_seq;
static int g_active;
static int g_installed;
static PyObject *g_releasing; /* the object whose death we are letting through */

/* Returns 1 when the death was deferred (the caller keeps the object). */
static int park(PyObject *co)
{
    if (g_nparked == g_capparked) {
        if (g_head > 0) { /* compact first */
            memmove(g_parked, g_parked + g_head, (g_nparked - g_head) * sizeof(parked));
            g_nparked -= g_head;
            g_head = 0;
        }
        if (g_nparked == g_capparked) {
            size_t cap = g_capparked ? g_capparked * 2 : 1024;
            parked *p = realloc(g_parked, cap * sizeof(parked));
            if (p == NULL) {
                return 0; /* let it die now; at worst one sample resolves as <unknown> */
            }
            g_parked = p;
            g_capparked = cap;
        }
    }
    g_parked[g_nparked].code = co;
    g_parked[g_nparked].seq = g_seq++;
    g_nparked++;
    return 1;
}

static int should_park(PyObject *co)
{
    if (!g_active || co == g_releasing) {
        return 0;
    }
    /* Only the main interpreter's code: sub-interpreters are never walked.
     * The unchecked getter never aborts, even during finalization. */
#if PY_VERSION_HEX >= 0x030D0000
    PyThreadState *ts = PyThreadState_GetUnchecked();
#else
    PyThreadState *ts = _PyThreadState_UncheckedGet();
#endif
    return ts != NULL && ts->interp == PyInterpreterState_Main();
}

#if PY_VERSION_HEX >= 0x030C0000
static int code_watcher(PyCodeEvent event, PyCodeObject *co)
{
    if (event == PY_CODE_EVENT_DESTROY && should_park((PyObject *)co)) {
        Py_INCREF(co); /* resurrects it: code_dealloc returns early */
        if (!park((PyObject *)co)) {
            Py_DECREF(co); /* refcount back to 1 inside code_dealloc: it proceeds */
        }
    }
    return 0;
}
#else
static destructor g_orig_dealloc;

static void code_dealloc_hook(PyObject *co)
{
#if !defined(Py_TRACE_REFS) && !defined(Py_REF_DEBUG)
    if (should_park(co)) {
        Py_SET_REFCNT(co, 1); /* resurrect: the parked list owns this reference */
        if (park(co)) {
            return;
        }
        Py_SET_REFCNT(co, 0);
    }
#endif
    g_orig_dealloc(co);
}
#endif

int rp_codes_install(void)
{
    if (g_installed) {
        return 0;
    }
#if PY_VERSION_HEX >= 0x030C0000
    if (PyCode_AddWatcher(code_watcher) < 0) {
        return -1;
    }
#else
    /* Installed once and never removed: another extension may wrap it after us. */
    g_orig_dealloc = PyCode_Type.tp_dealloc;
    PyCode_Type.tp_dealloc = code_dealloc_hook;
#endif
    g_installed = 1;
    return 0;
}

void rp_codes_set_active(int active) { g_active = active; }
uint64_t rp_codes_mark(void) { return g_seq; }
uint64_t rp_codes_parked(void) { return g_nparked - g_head; }

void rp_codes_release(uint64_t upto)
{
    /* Entries are in sequence order; releasing one may park new deaths (its
     * constants), which are appended behind and have larger sequence numbers. */
    while (g_head < g_nparked && g_parked[g_head].seq < upto) {
        PyObject *co = g_parked[g_head].code;
        g_head++;
        PyObject *prev = g_releasing;
        g_releasing = co;
        Py_DECREF(co);
        g_releasing = prev;
    }
    if (g_head == g_nparked) {
        g_head = g_nparked = 0;
    }
}

/* Fault-free read of our own memory: EFAULT instead of SIGSEGV. */
static int safe_read(const void *addr, void *dst, size_t len)
{
    struct iovec local = {dst, len};
    struct iovec remote = {(void *)addr, len};
    ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (n == (ssize_t)len) {
        return 0;
    }
    if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
        /* Seccomp'd: write() into a pipe also reports EFAULT on bad memory. */
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            return -1;
        }
        ssize_t w = write(fds[1], addr, len);
        int ok = w == (ssize_t)len && read(fds[0], dst, len) == (ssize_t)len;
        close(fds[0]);
        close(fds[1]);
        return ok ? 0 : -1;
    }
    return -1;
}

int rp_code_check(uint64_t ptr)
{
    PyObject head;
    if (ptr == 0 || ptr % 8 || safe_read((const void *)(uintptr_t)ptr, &head, sizeof(head)) != 0) {
        return 0;
    }
    return Py_TYPE(&head) == &PyCode_Type && Py_REFCNT(&head) > 0;
}

long rp_code_lasti(void *code, uint64_t instr) { return rpc_code_lasti((PyCodeObject *)code, instr); }
