/* codes.c -- the live-code registry and the graveyard of dead code; see codes.h. */
#define _GNU_SOURCE
#include "compat/compat.h"

#include "codes.h"
#include "stackcache.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ registry
 * Open addressing, linear probing, backward-shift deletion; 0 is the empty
 * key (no object lives at address 0).  Load factor <= 1/2. */
static uintptr_t *g_reg;
static size_t g_reg_cap; /* power of two, or 0 */
static size_t g_reg_n;

static inline size_t reg_hash(uintptr_t p, size_t mask)
{
    return (size_t)(((uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ull) >> 17) & mask;
}

static int reg_grow(void)
{
    size_t cap = g_reg_cap ? g_reg_cap * 2 : 4096;
    uintptr_t *t = calloc(cap, sizeof(uintptr_t));
    if (t == NULL) {
        return -1;
    }
    for (size_t i = 0; i < g_reg_cap; i++) {
        uintptr_t p = g_reg[i];
        if (p) {
            size_t j = reg_hash(p, cap - 1);
            while (t[j]) {
                j = (j + 1) & (cap - 1);
            }
            t[j] = p;
        }
    }
    free(g_reg);
    g_reg = t;
    g_reg_cap = cap;
    return 0;
}

static int reg_add(uintptr_t p)
{
    if ((g_reg_n + 1) * 2 > g_reg_cap && reg_grow() != 0) {
        return -1;
    }
    size_t mask = g_reg_cap - 1;
    for (size_t i = reg_hash(p, mask);; i = (i + 1) & mask) {
        if (g_reg[i] == p) {
            return 0;
        }
        if (g_reg[i] == 0) {
            g_reg[i] = p;
            g_reg_n++;
            return 1;
        }
    }
}

static int reg_has(uintptr_t p)
{
    if (g_reg_cap == 0 || p == 0) {
        return 0;
    }
    size_t mask = g_reg_cap - 1;
    for (size_t i = reg_hash(p, mask); g_reg[i]; i = (i + 1) & mask) {
        if (g_reg[i] == p) {
            return 1;
        }
    }
    return 0;
}

static void reg_remove(uintptr_t p)
{
    if (g_reg_cap == 0) {
        return;
    }
    size_t mask = g_reg_cap - 1;
    size_t i = reg_hash(p, mask);
    while (g_reg[i] != p) {
        if (g_reg[i] == 0) {
            return;
        }
        i = (i + 1) & mask;
    }
    /* Backward shift: move later members of the probe run into the hole. */
    for (size_t j = (i + 1) & mask; g_reg[j]; j = (j + 1) & mask) {
        size_t home = reg_hash(g_reg[j], mask);
        /* g_reg[j] may move to i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            g_reg[i] = g_reg[j];
            i = j;
        }
    }
    g_reg[i] = 0;
    g_reg_n--;
}

/* ------------------------------------------------------------------ graveyard */
static rp_dead_code *g_dead;
static size_t g_ndead, g_capdead, g_head; /* [g_head, g_ndead) are held */
static uint64_t g_seq;
static int g_active;
static int g_installed;       /* hooks live in the running interpreter */
#if PY_VERSION_HEX >= 0x030C0000
static int g_watcher_id = -1;
#else
static destructor g_orig_dealloc; /* PyCode_Type is static: hooked once per process */
#endif
static int g_atfork_registered;

/* ------------------------------------------------------------------ quiet deaths
 * While nothing samples, deaths are not snapshotted, but the resolver still
 * knows addresses from the last session; a new code object may come to live
 * at one of them.  Rather than forget everything at each start (and resolve
 * every stack afresh, costly for on-demand recordings that start and stop
 * often), the addresses that died while deferral was off are logged here, up
 * to a bound; the resolver forgets those at its first drain after sampling
 * starts.  Past the bound, or before anything was logged at all (hooks not
 * installed yet, after Py_Finalize()), the log says "lost": forget
 * everything. */
static uint64_t g_quiet[RP_QUIET_DEATHS_MAX];
static size_t g_nquiet;
static int g_quiet_lost = 1;

static void quiet_death(uint64_t ptr)
{
    if (g_nquiet < RP_QUIET_DEATHS_MAX) {
        g_quiet[g_nquiet++] = ptr;
    } else {
        g_quiet_lost = 1;
    }
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void snapshot(PyCodeObject *co)
{
    if (g_ndead == g_capdead) {
        if (g_head > 0) { /* compact first */
            memmove(g_dead, g_dead + g_head, (g_ndead - g_head) * sizeof(rp_dead_code));
            g_ndead -= g_head;
            g_head = 0;
        }
        if (g_ndead == g_capdead) {
            size_t cap = g_capdead ? g_capdead * 2 : 1024;
            rp_dead_code *p = realloc(g_dead, cap * sizeof(rp_dead_code));
            if (p == NULL) {
                return; /* no snapshot: at worst a sample of it resolves as <unknown> */
            }
            g_dead = p;
            g_capdead = cap;
        }
    }
    rp_dead_code *d = &g_dead[g_ndead++];
    d->ptr = (uint64_t)(uintptr_t)co;
    d->death_ns = monotonic_ns();
    d->seq = g_seq++;
    d->qualname = Py_NewRef(co->co_qualname);
    d->filename = Py_NewRef(co->co_filename);
    d->linetable = Py_NewRef(co->co_linetable);
    d->firstlineno = co->co_firstlineno;
    d->ncodeunits = (int)Py_SIZE(co);
    d->firsttraceable = co->_co_firsttraceable;
}

static int in_main_interp(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyThreadState *ts = PyThreadState_GetUnchecked();
#else
    PyThreadState *ts = _PyThreadState_UncheckedGet();
#endif
    return ts != NULL && ts->interp == PyInterpreterState_Main();
}

/* A code object is dying (its memory is still intact). */
static void code_died(PyCodeObject *co)
{
    reg_remove((uintptr_t)co);
    /* Only the main interpreter's code: sub-interpreters are never walked.
     * The unchecked getter never aborts, even during finalization. */
    if (g_active && in_main_interp()) {
        snapshot(co);
    } else if (!g_active) {
        quiet_death((uint64_t)(uintptr_t)co);
    }
}

#if PY_VERSION_HEX >= 0x030C0000
static int code_watcher(PyCodeEvent event, PyCodeObject *co)
{
    if (event == PY_CODE_EVENT_CREATE) {
        if (in_main_interp()) {
            (void)reg_add((uintptr_t)co); /* out of memory: it stays unknown */
        }
    } else if (event == PY_CODE_EVENT_DESTROY) {
        code_died(co);
    }
    return 0;
}
#else
/* 3.11 has no creation event.  Code that runs is reachable from a function, a
 * frame or another code object's constants (the resolver scans those), except
 * a code object handed to exec()/eval(), which is how every module body runs
 * (imports included): the "exec" audit event registers it and its nested code. */
static void register_tree(PyCodeObject *co, int depth)
{
    if (reg_add((uintptr_t)co) != 1 || depth > 200) {
        return; /* known already (and so is its nested code), or no memory */
    }
    PyObject *consts = co->co_consts;
    for (Py_ssize_t i = 0; consts != NULL && i < PyTuple_GET_SIZE(consts); i++) {
        PyObject *c = PyTuple_GET_ITEM(consts, i);
        if (PyCode_Check(c)) {
            register_tree((PyCodeObject *)c, depth + 1);
        }
    }
}

static int audit_hook(const char *event, PyObject *args, void *data)
{
    (void)data;
    if (g_installed && event[0] == 'e' && strcmp(event, "exec") == 0 && PyTuple_Check(args) &&
        PyTuple_GET_SIZE(args) >= 1 && PyCode_Check(PyTuple_GET_ITEM(args, 0)) && in_main_interp()) {
        register_tree((PyCodeObject *)PyTuple_GET_ITEM(args, 0), 0);
    }
    return 0;
}

static void code_dealloc_hook(PyObject *co)
{
    if (g_installed) {
        code_died((PyCodeObject *)co);
    }
    g_orig_dealloc(co);
}
#endif

/* Py_Finalize(): the interpreter's objects and our watcher are gone.  Forget
 * everything (no Py_DECREF: those objects no longer exist). */
static void codes_at_exit(void)
{
    g_installed = 0;
    g_active = 0;
#if PY_VERSION_HEX >= 0x030C0000
    g_watcher_id = -1;
#endif
    free(g_reg);
    g_reg = NULL;
    g_reg_cap = g_reg_n = 0;
    free(g_dead);
    g_dead = NULL;
    g_ndead = g_capdead = g_head = 0;
    g_nquiet = 0;
    g_quiet_lost = 1;
}

/* Fork child: the sampler is off there (sampler.c's own atfork handler), so
 * deferral must be too -- also after a C-level fork() that never runs
 * PyOS_AfterFork_Child.  Snapshots already held are dropped at the next
 * rp_codes_release(). */
static void codes_atfork_child(void) { rp_codes_set_active(0); }

int rp_codes_install(void)
{
    if (g_installed) {
        return 0;
    }
    if (Py_AtExit(codes_at_exit) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "ringprof: no Py_AtExit slot left for the code registry");
        return -1;
    }
    if (!g_atfork_registered) {
        if (pthread_atfork(NULL, NULL, codes_atfork_child) != 0) {
            PyErr_SetString(PyExc_RuntimeError, "ringprof: pthread_atfork failed");
            return -1;
        }
        g_atfork_registered = 1;
    }
#if PY_VERSION_HEX >= 0x030C0000
    g_watcher_id = PyCode_AddWatcher(code_watcher);
    if (g_watcher_id < 0) {
        return -1;
    }
#else
    /* Installed once per process and never removed: another extension may
     * wrap it after us, and PyCode_Type outlives Py_Finalize(). */
    if (g_orig_dealloc == NULL) {
        g_orig_dealloc = PyCode_Type.tp_dealloc;
        PyCode_Type.tp_dealloc = code_dealloc_hook;
    }
    /* Audit hooks are cleared by Py_Finalize(): one per interpreter lifetime.
     * A Python audit hook may veto it; then exec'd code is found by scans only. */
    if (PySys_AddAuditHook(audit_hook, NULL) != 0) {
        PyErr_Clear();
    }
#endif
    g_installed = 1;
    return 0;
}

void rp_codes_set_active(int active)
{
    if (g_active && !active) {
        /* A held snapshot may be of a death the resolver has not read yet (it
         * reads the graveyard as a drain begins): log it, so that the next
         * session forgets its address too.  Logging one twice is harmless. */
        for (size_t i = g_head; i < g_ndead; i++) {
            quiet_death(g_dead[i].ptr);
        }
    }
    g_active = active && g_installed;
}

int rp_codes_quiet_pending(void) { return g_quiet_lost || g_nquiet > 0; }

int rp_codes_take_quiet(uint64_t *out, size_t cap, size_t *n)
{
    int lost = g_quiet_lost || g_nquiet > cap;
    size_t k = lost ? 0 : g_nquiet;
    memcpy(out, g_quiet, k * sizeof(uint64_t));
    *n = k;
    g_nquiet = 0;
    g_quiet_lost = 0;
    return lost;
}
int rp_codes_active(void) { return g_active; }
uint64_t rp_codes_mark(void) { return g_seq; }
uint64_t rp_codes_parked(void) { return g_ndead - g_head; }
uint64_t rp_codes_first_seq(void) { return g_head < g_ndead ? g_dead[g_head].seq : g_seq; }
uint64_t rp_codes_registered(void) { return g_reg_n; }

void rp_codes_release(uint64_t upto)
{
    /* Entries are in sequence order.  Releasing a reference may free a
     * string, never a code object, so nothing is appended meanwhile; still,
     * re-read the bounds each step. */
    while (g_head < g_ndead && g_dead[g_head].seq < upto) {
        rp_dead_code d = g_dead[g_head];
        g_head++;
        Py_DECREF((PyObject *)d.qualname);
        Py_DECREF((PyObject *)d.filename);
        Py_DECREF((PyObject *)d.linetable);
    }
    if (g_head == g_ndead) {
        g_head = g_ndead = 0;
    }
}

int rp_codes_register(void *code)
{
    PyObject *o = (PyObject *)code;
    if (!g_installed || o == NULL || !PyCode_Check(o)) {
        return 0;
    }
    return reg_add((uintptr_t)o);
}

int rp_codes_known(uint64_t ptr) { return g_installed && reg_has((uintptr_t)ptr); }

/* Statically allocated code objects (3.13+: _Py_InitCleanup, the frame that
 * runs after a Python __init__; deep-frozen code on 3.11/3.12) are never
 * created or destroyed, so no event registers them.  They live in the image
 * of the library (or executable) that defines PyCode_Type, which stays mapped
 * and holds no heap memory: an address inside it cannot be a freed object.
 * Its header is still read through a fault-free copy (an image may have
 * unmapped gaps), and only a code object is registered. */
int rp_codes_static(uint64_t ptr)
{
    Dl_info img, at;
    if (!g_installed || ptr == 0 || ptr % 8 || !dladdr((void *)&PyCode_Type, &img) ||
        !dladdr((void *)(uintptr_t)ptr, &at) || img.dli_fbase == NULL || at.dli_fbase != img.dli_fbase) {
        return 0;
    }
    PyObject head;
    struct iovec local = {&head, sizeof(head)};
    struct iovec remote = {(void *)(uintptr_t)ptr, sizeof(head)};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)sizeof(head) ||
        Py_TYPE(&head) != &PyCode_Type) {
        return 0;
    }
    return reg_add((uintptr_t)ptr) >= 0;
}

const rp_dead_code *rp_codes_dead(uint64_t seq)
{
    if (g_head >= g_ndead || seq < g_dead[g_head].seq) {
        return NULL;
    }
    uint64_t i = g_head + (seq - g_dead[g_head].seq); /* sequence numbers are contiguous */
    return i < g_ndead && g_dead[i].seq == seq ? &g_dead[i] : NULL;
}

/* ------------------------------------------------------------------ lines
 * The 3.11+ location table (Objects/locations.md): one entry per run of code
 * units; the first byte is 1cccclll (c: kind, l: length - 1 in code units),
 * followed by varints.  Kinds: 15 no location; 14 long form (signed line
 * delta, ...); 13 no columns (signed line delta); 10..12 one line, delta
 * kind - 10; 0..9 short form, same line. */
static size_t read_varint(const unsigned char *t, size_t len, size_t i, unsigned int *out)
{
    unsigned int val = 0, shift = 0;
    while (i < len) {
        unsigned int b = t[i++];
        val |= (b & 63u) << shift;
        shift += 6;
        if (!(b & 64) || shift > 24) {
            break;
        }
    }
    *out = val;
    return i;
}

int rp_linetable_line(const unsigned char *table, size_t len, int firstlineno, long lasti)
{
    if (lasti < 0) {
        return firstlineno;
    }
    long line = firstlineno, end = 0;
    size_t i = 0;
    while (i < len) {
        unsigned int first = table[i];
        unsigned int kind = (first >> 3) & 15;
        long delta = 0;
        if (kind == 14 || kind == 13) {
            unsigned int u;
            read_varint(table, len, i + 1, &u);
            delta = (u & 1) ? -(long)(u >> 1) : (long)(u >> 1);
        } else if (kind >= 10 && kind <= 12) {
            delta = (long)kind - 10;
        }
        line += delta;
        end += (long)(first & 7) + 1;
        if (lasti < end) {
            return kind == 15 ? -1 : (int)line;
        }
        do {
            i++;
        } while (i < len && (table[i] & 128) == 0);
    }
    return -1;
}

int rp_dead_code_line(const rp_dead_code *d, uint64_t instr)
{
    uint64_t start = d->ptr + offsetof(PyCodeObject, co_code_adaptive);
    uint64_t end = start + (uint64_t)d->ncodeunits * RPC_CODEUNIT_SIZE;
    if (instr < start || instr >= end || (instr - start) % RPC_CODEUNIT_SIZE) {
        return -1;
    }
    long lasti = (long)((instr - start) / RPC_CODEUNIT_SIZE);
    if (lasti < d->firsttraceable) {
        return -1;
    }
    PyObject *t = (PyObject *)d->linetable;
    int line = rp_linetable_line((const unsigned char *)PyBytes_AS_STRING(t), (size_t)PyBytes_GET_SIZE(t),
                                 d->firstlineno, lasti);
    return line > 0 ? line : 0;
}

long rp_code_lasti(void *code, uint64_t instr) { return rpc_code_lasti((PyCodeObject *)code, instr); }

void rp_code_lines_of(void *code, struct rp_code_lines *out)
{
    PyCodeObject *co = (PyCodeObject *)code;
    out->start = rp_code_instr_address(code, 0);
    out->table = (const unsigned char *)PyBytes_AS_STRING(co->co_linetable);
    out->len = (size_t)PyBytes_GET_SIZE(co->co_linetable);
    out->firstlineno = co->co_firstlineno;
    out->ncodeunits = (int)Py_SIZE(co);
    out->firsttraceable = co->_co_firsttraceable;
    out->unit = (int)RPC_CODEUNIT_SIZE;
}

uint64_t rp_code_instr_address(void *code, long lasti)
{
    return (uint64_t)(uintptr_t)code + offsetof(PyCodeObject, co_code_adaptive) + (uint64_t)lasti * RPC_CODEUNIT_SIZE;
}
