/*
 * codes.h -- code-object lifetime and identity for the drain (GIL held;
 * nothing here is ever called from the signal handler).
 *
 * The problem: a sample records a raw PyCodeObject* that the drain resolves up
 * to ~100 ms later.  By then the code object may have died, and its memory may
 * be free (pymalloc keeps ob_type in a freed block, so no "fault-free type
 * check" can tell a freed code object from a live one) or reused by another
 * code object.  Two structures answer "what did this pointer name when it was
 * sampled?" without ever reading memory that is not known to be live:
 *
 * REGISTRY (which pointers are live code objects right now).  A hash set of
 * the addresses of code objects of the main interpreter that ringprof has
 * seen alive: every code object created while the hooks are installed (3.12+:
 * PY_CODE_EVENT_CREATE), plus whatever the resolver hands to
 * rp_codes_register() (it scans functions, generators, frames and their
 * constants).  Every death removes the address (3.12+: the DESTROY event;
 * 3.11: a wrapper around PyCode_Type.tp_dealloc), before the memory is freed.
 * So with the GIL held, membership means "a live code object is at this
 * address", and only then does the drain turn a pointer into a reference.  An
 * address that is not in the registry is reported as unknown, never read.
 * (If another code watcher resurrects an object after our DESTROY callback,
 * the object lives on unregistered: unknown, never unsafe.)
 *
 * GRAVEYARD (what a dead pointer named).  While deferral is active (sampling,
 * or samples not yet drained), each death appends a snapshot: the address,
 * CLOCK_MONOTONIC time of death, a sequence number, and new references to the
 * strings and the line table (not to the code object, which dies normally:
 * no resurrection, so other code watchers see exactly one DESTROY).  A sample
 * is stamped with CLOCK_MONOTONIC when its handler starts, and a frame holds a
 * strong reference to its code, so a code object named by a sample was alive
 * during the whole walk: a sample at time t that names address A names the
 * object that died at A at the first death time > t, if there is one, and
 * otherwise the live object at A (the registry).  The drain takes
 * rp_codes_mark() before copying the rings, resolves, then calls
 * rp_codes_release(mark); a record committed later was walked after every
 * death released then (its frames kept the code alive until the commit).
 *
 * Lifecycle: rp_codes_install() registers the hooks for the running
 * interpreter and a Py_AtExit callback that forgets everything at
 * Py_Finalize(), so a later Py_Initialize() installs afresh.  A fork child
 * (pthread_atfork, so also a C-level fork() that skips PyOS_AfterFork_Child)
 * stops deferring.
 *
 * QUIET DEATHS (between sessions).  While deferral is off, each death logs
 * just its address (up to RP_QUIET_DEATHS_MAX; beyond, the log says "lost"),
 * and so does every snapshot still held when deferral is switched off.  The
 * resolver takes the log at its first drain after sampling starts again and
 * forgets those addresses only, keeping what it knows about code that lived
 * on; a lost log makes it forget everything.
 *
 * SIGNAL-SAFETY CONTRACT
 * ----------------------
 * Nothing here is reachable from the signal handler, which never reads these
 * structures: samples carry raw addresses, and only the drain interprets them.
 * Everything runs with the GIL held (code-object creation and deaths, the
 * drain, the resolver), except the fork child's handler, which runs in the
 * child's only thread before any Python code; so these functions may take the
 * GIL-protected path, allocate and use the C-API.
 */
#ifndef RINGPROF_CODES_H
#define RINGPROF_CODES_H

#include <stdint.h>

int rp_codes_install(void);            /* 0 ok, -1 with a Python error set */
void rp_codes_set_active(int active);  /* snapshot deaths while active */
int rp_codes_active(void);
uint64_t rp_codes_mark(void);          /* deaths snapshotted so far */
void rp_codes_release(uint64_t upto);  /* drop snapshots with sequence < upto */
uint64_t rp_codes_parked(void);        /* snapshots currently held */
uint64_t rp_codes_first_seq(void);     /* sequence of the oldest snapshot held */
int rp_codes_register(void *code);     /* 1 added, 0 already known or not a code object, -1 no memory */
int rp_codes_known(uint64_t ptr);      /* 1 if a live code object is at ptr (GIL held) */
int rp_codes_static(uint64_t ptr);     /* 1 if ptr is a static code object in Python's image (now registered) */
uint64_t rp_codes_registered(void);    /* registry size */
/* Addresses of code objects that died while deferral was off, into out[cap]
 * (*n of them), and the log emptied.  Returns 1 when the log cannot say
 * (overflowed, or nothing was logged since the hooks were installed): then
 * forget every address. */
#define RP_QUIET_DEATHS_MAX 4096
int rp_codes_take_quiet(uint64_t *out, size_t cap, size_t *n);
int rp_codes_quiet_pending(void);      /* 1 if rp_codes_take_quiet() has anything to say */

/* One snapshot, by sequence number; NULL once released. */
typedef struct rp_dead_code {
    uint64_t ptr;
    uint64_t death_ns;
    uint64_t seq;
    void *qualname;  /* PyObject *: str */
    void *filename;  /* PyObject *: str */
    void *linetable; /* PyObject *: bytes */
    int firstlineno;
    int ncodeunits;
    int firsttraceable;
} rp_dead_code;
const rp_dead_code *rp_codes_dead(uint64_t seq);
/* Line of raw instruction pointer instr in a snapshot: -1 incomplete frame
 * (not started, or outside the code), 0 no line. */
int rp_dead_code_line(const rp_dead_code *d, uint64_t instr);

/* The fields that find the line of any instruction of live code object `code`
 * (GIL held), for the drain's line map (stackcache.h); `table` points into
 * co_linetable, which the caller keeps alive. */
struct rp_code_lines;
void rp_code_lines_of(void *code, struct rp_code_lines *out);

/* Code-unit index of instr in code (-1: out of range or incomplete frame). */
long rp_code_lasti(void *code, uint64_t instr);
/* Raw instruction pointer of code unit `lasti` of code (tests). */
uint64_t rp_code_instr_address(void *code, long lasti);
/* Line for code-unit index lasti from a 3.11+ location table (tests compare
 * it with PyCode_Addr2Line). */
int rp_linetable_line(const unsigned char *table, size_t len, int firstlineno, long lasti);

#endif
