/*
 * sampler.c -- per-thread POSIX timers, the SIGPROF handler and the slots that
 * connect them to the rings.  Read the contract in sampler.h first.
 */
#define _GNU_SOURCE
#include "compat/compat.h" /* must come first: defines Py_BUILD_CORE_MODULE */

#include "sampler.h"
#include "ring.h"
#include "outside.h"
#include "safe_copy.h"
#include "ticker.h"

#include <dlfcn.h>
#include <link.h>
#include <ucontext.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define RP_LIVE_RANGES 16    /* datastack chunks checked; deeper ones are copied */

/* Slot states (consumer side). */
enum { SLOT_FREE = 0, SLOT_LIVE = 1, SLOT_RETIRED = 2 };

typedef struct rp_slot {
    /* Read by the handler. */
    _Atomic uint64_t gen;  /* bumped whenever the slot changes owner; 0 = never used */
    _Atomic int live;      /* 1 while the handler may record into this slot */
    pthread_t owner;       /* pthread of the sampled thread */
    uint64_t tid;          /* its kernel thread id */
    uint64_t ts_id;        /* its PyThreadState's unique id: tells a new thread from a dead one with its tid */
    uintptr_t stack_lo, stack_hi; /* its C stack, when known (0, 0: not known) */
    clockid_t cpuclock;    /* its CPU-time clock */
    uint64_t last_cpu_ns;  /* wall mode: CPU clock at the previous sample (handler-owned) */
    uint64_t rng;          /* cpu mode, perf: next-period randomisation (handler-owned xorshift) */
    uint64_t perf_samples; /*   samples since the timer was armed (handler-owned) */
    _Atomic uint64_t samples;
    _Atomic uint64_t handler_ns;
    _Atomic uint64_t record_ns; /* handler_ns without re-arming the timer: the walk and the record */
    /* Wall mode on the tick thread (see wall_tick). */
    _Atomic int inflight;         /* a tick signal is queued or running: never queue a second one */
    _Atomic uint64_t wall_weight; /* intervals of wall time of the ticks sent, not yet recorded */
    _Atomic uint64_t label;       /* the thread's label, for records written while it is blocked */
    rp_ring ring;
    /* Consumer side only. */
    int state;
    int has_timer;
    timer_t timer;
    int perf_fd;   /* cpu mode: its task-clock perf event, or -1 (then `timer` is used) */
    int seen;      /* mark for rp_sync_threads */
    uint64_t snap; /* head position captured by rp_drain_prepare */
    /* Wall mode, tick thread (control lock). */
    PyThreadState *ts;      /* compared with the GIL holder, read fault-free, never dereferenced */
    rp_frame *blocked;      /* the stack read from outside while the thread was not running */
    uint16_t blocked_n;     /*   frames in it */
    uint16_t blocked_flags;
    int blocked_valid;
    uint64_t blocked_cpu;   /*   the thread's CPU clock at that read: unchanged = still its stack */
    uint64_t idle_ticks;    /* intervals counted on the blocked stack, not yet written */
    uint64_t idle_t0;       /*   time of the first of them */
    uint64_t idle_label;    /*   the thread's label then */
    uint32_t quiet;         /* consecutive checks that found its CPU clock unchanged */
    unsigned long gil_epoch; /* GIL switch count when its blocked stack was last confirmed ... */
    int epoch_valid;        /*   ... while it was not the GIL's last holder */
} rp_slot;

static rp_slot g_slots[RP_MAX_SLOTS];
static _Atomic int g_enabled;
static _Atomic int g_active;
static _Atomic uint64_t g_unattributed;
static _Atomic uint64_t g_dropped_retired; /* drops of slots already recycled */
static _Atomic uint64_t g_samples_retired;
static _Atomic uint64_t g_handler_ns_retired;
static _Atomic uint64_t g_record_ns_retired;
static uint64_t g_timer_errors;
static rp_config g_cfg;           /* consumer side only; the handler reads the atomics below */
static _Atomic uint32_t g_max_depth; /* g_cfg.max_depth, for the handler */
static _Atomic int g_mode;           /* g_cfg.mode, for the handler */
static _Atomic uint64_t g_interval_ns; /* g_cfg.interval_ns, for the handler */
static int g_timer_kind;
static _Atomic uint32_t g_slot_hwm; /* slots ever used: bounds every scan (only grows) */
static _Atomic uint64_t g_test_delay_ns; /* test hook: the handler spins this long (0 = off) */
static _Atomic int g_test_clock_zero;     /* test hook: thread_cpu_ns reads 0 (0 = off) */
static _Atomic uint64_t g_test_tick_delay_ns; /* test hook: a tick sleeps this long after its GIL view */
static _Atomic uintptr_t g_test_outer_slot; /* test hook: the walk's outer-frame slot (0 = off) */
static PyInterpreterState *g_main_interp;
static long g_excluded_tid = -1;
static struct sigaction g_old_action;
static int g_installed;
static int g_signo;         /* the signal of the running (or last) session: g_rt_signo or SIGPROF */
static int g_rt_signo;      /* the real-time signal chosen for this process (0: not yet) */
static pthread_mutex_t g_ctl = PTHREAD_MUTEX_INITIALIZER;
/* Serialises start and stop: the tick thread is joined outside the control
 * lock its ticks take. */
static pthread_mutex_t g_lifecycle = PTHREAD_MUTEX_INITIALIZER;
static int g_atfork_registered;
static pid_t g_pid;       /* for process_vm_readv on ourselves; reset in fork children */
static int g_safe_copy;   /* process_vm_readv works here (probed at start) */
static int g_use_perf;    /* cpu mode: per-thread task-clock perf events (probed at start) */
static int g_wall_tick;   /* wall mode: driven by the tick thread (see wall_tick), not per-thread timers */
static rp_ring g_tick_ring;              /* records of blocked threads; one producer: the control lock's holder */
static uint64_t g_tick_snap;             /* its head at rp_drain_prepare */
#define RP_TICK_RING_BYTES (1u << 22)     /* 4 MiB, committed as used */
static uint64_t g_idle_batch;            /* intervals of a blocked thread per record at most (1 s) */
static uint64_t g_tick_rng;              /* tick thread only */
static _Atomic uint64_t g_signals_sent;  /* tick signals queued */
static _Atomic uint64_t g_blocked_records;

/* cpu mode clock source.  A POSIX CPU-time timer expires only at the kernel
 * tick (4 ms at 250 Hz): its samples sit at tick instants, so work whose
 * period is commensurate with the tick (a 20 ms loop) is only ever seen at the
 * same few phases, and its profile is wrong at every interval.  A perf
 * "task-clock" software event is a high-resolution timer that runs only while
 * the thread is on CPU and fires in the thread's own context, so a sample
 * lands at an arbitrary instruction of the thread's CPU time; the handler
 * draws each next period at random in [interval/2, 3*interval/2) so no
 * periodic work can phase-lock with it.  It is also delivered in the thread's
 * context on a loaded machine, where a signal sent from another thread would
 * wait for the thread to be scheduled and land where it was preempted (a
 * biased place: preemptions cluster at system-call exits).  The overflow
 * signal (F_SETSIG, F_OWNER_TID) carries the event's fd; g_fd_slot maps it to
 * the slot (index | generation), so a signal from a closed or reused fd never
 * reaches the wrong slot.  Where perf events are not allowed
 * (perf_event_paranoid, seccomp), POSIX CPU-time timers are used. */
#define RP_FD_SLOTS 4096
static _Atomic uint64_t g_fd_slot[RP_FD_SLOTS];
/* Per-thread label id.  initial-exec TLS: a plain %fs-relative load, with no
 * __tls_get_addr call that could allocate inside the handler. */
static __thread uint64_t t_label __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------ helpers */

static inline uint64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Another thread's CPU clock (a system call).  0 ns is a valid reading -- the
 * kernel had charged no run time yet to a thread that started and blocked at
 * once (seen about once in 100 runs under ASan on 3.14, where such a thread
 * was then refused as "exited") -- so failure is reported apart: -1 means
 * the thread is gone. */
static inline int thread_cpu_ns(clockid_t clk, uint64_t *ns)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0) {
        return -1;
    }
    *ns = atomic_load_explicit(&g_test_clock_zero, memory_order_relaxed)
              ? 0
              : (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return 0;
}

/* si_value carries (generation << 16 | slot index): the handler never follows
 * a pointer from the kernel, it bounds-checks an index. */
static inline void *encode_value(uint32_t idx, uint64_t gen) { return (void *)(uintptr_t)((gen << 16) | idx); }

static int is_perf_signal(const siginfo_t *si)
{
    return (si->si_code == POLL_IN || si->si_code == POLL_HUP) && si->si_fd >= 0 && si->si_fd < RP_FD_SLOTS;
}

/* Wall mode: the tick thread queues (SI_QUEUE, from our own pid) the same
 * (generation << 16 | slot index) value a POSIX timer carries. */
static int is_tick_signal(const siginfo_t *si) { return si->si_code == SI_QUEUE && si->si_pid == g_pid; }

static rp_slot *slot_for_signal(const siginfo_t *si)
{
    if (g_timer_kind == RP_TIMER_THREAD && (si->si_code == SI_TIMER || is_tick_signal(si) || is_perf_signal(si))) {
        uint64_t v = !is_perf_signal(si) ? (uint64_t)(uintptr_t)si->si_value.sival_ptr
                                         : atomic_load_explicit(&g_fd_slot[si->si_fd], memory_order_acquire);
        uint32_t idx = (uint32_t)(v & 0xffff);
        if (idx >= RP_MAX_SLOTS) {
            return NULL;
        }
        rp_slot *s = &g_slots[idx];
        if (atomic_load_explicit(&s->gen, memory_order_acquire) != (v >> 16)) {
            return NULL; /* a stale signal from a deleted timer */
        }
        return s;
    }
    if (g_timer_kind == RP_TIMER_ITIMER) {
        /* Process-wide timer: find this thread's slot by a bounded scan. */
        pthread_t self = pthread_self();
        uint32_t n = atomic_load_explicit(&g_slot_hwm, memory_order_acquire);
        for (uint32_t i = 0; i < n && i < RP_MAX_SLOTS; i++) {
            if (atomic_load(&g_slots[i].live) && /* seq_cst: see the handshake in sampler.h */
                pthread_equal(g_slots[i].owner, self)) {
                return &g_slots[i];
            }
        }
    }
    return NULL;
}

/* Copy `len` bytes of our own memory without faulting: the kernel reports
 * EFAULT for an unmapped source.  A raw syscall: async-signal-safe. */
static _Atomic uint64_t g_safe_copies; /* fault-free copies made by walks (benchmarks, tests) */

static int fault_free_copy(void *dst, const void *src, size_t len)
{
    atomic_fetch_add_explicit(&g_safe_copies, 1, memory_order_relaxed);
    return rp_copy_own_memory(g_pid, dst, src, len);
}

uint64_t rp_walk_copies(void) { return atomic_load_explicit(&g_safe_copies, memory_order_relaxed); }

/* ------------------------------------------------------------------ the walk
 *
 * COST.  A sample costs O(min(depth, max_depth)) plain loads: the walk stops
 * at the max_depth-th Python frame and marks the record RP_F_TRUNCATED ("deeper
 * than max_depth"; the true depth is not counted), gives up after
 * walk_limit() visited frames (shims included) or, once it has made a copy,
 * after RP_WALK_BUDGET_NS of CLOCK_MONOTONIC time, and makes at most a handful
 * of fault-free copies (each one
 * a syscall of ~1-2 us on a VM), however many generator frames the chain has.
 *
 * SAFETY: which frames may be read in place.  A fault in the handler kills the
 * host, so a frame is read in place only when it is known to be mapped:
 *  1. Frames inside the live part of this thread's datastack chunks
 *     (rpc_live_ranges) are mapped by construction.
 *  2. Any other frame (a generator's or coroutine's frame inside its heap
 *     object, a C-stack entry shim, the 3.15 base frame, or a stale pointer)
 *     is read in place only once the walk is TRUSTED or rule 3 or 4 applies,
 *     and through one fault-free copy otherwise.
 *  3. 3.11 and 3.12, where generators run in the eval loop that is in the
 *     cframe window (below): the frame of a generator found on this thread's
 *     exc_info chain (exc_chain_has).  A generator is pushed on that chain
 *     before its frame runs and popped before its frame is unlinked, every
 *     entry of the chain is alive (CPython follows it whenever an exception
 *     is raised), and the owner's type is read only on the entry's own page
 *     (rpc_exc_generator_frame).  The one frame such a generator links to is
 *     read in place too: that link is NULL until the generator is linked and
 *     then names the live frame it returns to (its caller's frame, or the
 *     entry shim of the eval loop running it).  Neither proof extends past
 *     that link, so a torn chain reaches nothing that is not proven or
 *     copied.  None of this depends on the order of the stores that link a
 *     frame: a link is either its old value (NULL) or its new one.
 *  4. 3.12: the entry frame of the innermost eval loop, at a fixed distance
 *     from that loop's cframe (rpc_innermost_shim): a local of the live C
 *     frame of _PyEval_EvalFrameDefault that tstate->cframe belongs to.
 *     Read in place, its link is trusted no more than any other.
 * The walk becomes trusted once it has passed the only frames whose link can
 * be stale:
 *  - The leaf: current_frame may point into a datastack chunk freed before
 *    current_frame left it (every version), so it is always read by rule 1 or
 *    through a copy.  Its `previous` link is written before the frame is
 *    published (program order in every version's push: _PyFrame_Initialize /
 *    _PUSH_FRAME / gen_send_ex2 and the eval-loop entry link first, then
 *    publish), so from 3.13 on the walk is trusted after the leaf.
 *  - 3.11/3.12 also publish tstate->cframe before its current_frame is set
 *    (a window in the prologue of _PyEval_EvalFrameDefault, with no call
 *    inside it): there the "leaf" can be uninitialised C-stack memory -- often
 *    a stale pointer to a frame long gone -- and its successors garbage.  If
 *    the interrupted PC is outside _PyEval_EvalFrameDefault, the window is
 *    closed and the walk is trusted after the leaf as above.  Otherwise it is
 *    trusted from the enclosing eval loop's current frame on (the previous
 *    cframe's current_frame, read fault-free once): that loop is suspended in
 *    a C call, so its chain is settled.  On 3.12 the frames between the leaf
 *    and that point are mostly generators the innermost loop runs inline
 *    (SEND and FOR_ITER push them without a new eval loop): rule 3 reads
 *    them in place, where each used to cost a copy (a 30-deep await chain:
 *    ~10 copies per sample, up to max_depth of them).
 * Why trusted links are safe to follow in place: every frame on a settled
 * chain is executing -- suspended in a call, not returned -- so it is alive:
 * a thread-owned frame in the datastack, a generator frame inside a
 * generator object that the caller's value stack references (SEND/FOR_ITER/
 * await hold it) and that cannot run or die elsewhere while it executes here,
 * or an entry shim in a C frame of this thread below the handler.  Its
 * `previous` was written before it called anything, and nothing rewrites the
 * link of a frame that is not the leaf (a generator clears its link only after
 * popping itself).  Other threads cannot change this chain: they would need
 * this thread's frames, and the thread is stopped in this handler.
 * Tripwires on the in-place path: a generator-owned frame outside the
 * datastack must sit in an object whose type is generator, coroutine or async
 * generator and whose frame state is EXECUTING (a freed or suspended
 * generator is neither), and every frame is checked for a plausible owner,
 * code pointer and alignment; a failure ends the walk with RP_F_BAD_FRAME.
 * Code pointers are never dereferenced here; the drain resolves them only
 * through the live-code registry (codes.h).
 * Residual risk, stated: greenlet-style stack switching rewrites
 * current_frame and the datastack fields non-atomically; the chain it
 * publishes is still one of live frames, and rule 1 bounds what is read in
 * place before the walk is trusted. */
/* Per sample, wall time, checked once the walk has made a copy: in-place
 * reads are bounded by walk_limit() alone (a few us), so a preempted handler
 * never loses frames to the clock; syscalls are what can add up (3.12). */
#define RP_WALK_BUDGET_NS 1000000u
#define RP_CLOCK_EVERY 64        /* frames between two budget checks */

/* 3.12: where _PyEval_EvalFrameDefault keeps its entry frame, relative to its
 * cframe (rpc_innermost_shim); 0 = unknown.  Measured at each start. */
static _Atomic long g_shim_offset;
#define RP_SHIM_OFFSET_MAX 4096 /* both are locals of one C frame */

/* 3.11/3.12: the code of _PyEval_EvalFrameDefault, where the cframe window is
 * (found with dladdr1 at start; 0/0 = unknown: always assume the window). */
#if PY_VERSION_HEX < 0x030D0000
static uintptr_t g_eval_lo, g_eval_hi;
#endif

/* The interrupted code's program counter and stack pointer, 0 where not
 * known: the one place that knows each architecture's ucontext layout. */
static void interrupted_regs(const void *uctx, uintptr_t *pc, uintptr_t *sp)
{
    *pc = *sp = 0;
    if (uctx == NULL) {
        return;
    }
#if defined(__x86_64__)
    *pc = (uintptr_t)((const ucontext_t *)uctx)->uc_mcontext.gregs[REG_RIP];
    *sp = (uintptr_t)((const ucontext_t *)uctx)->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    *pc = (uintptr_t)((const ucontext_t *)uctx)->uc_mcontext.pc;
    *sp = (uintptr_t)((const ucontext_t *)uctx)->uc_mcontext.sp;
#endif
}

/* Was the thread interrupted inside _PyEval_EvalFrameDefault (where 3.11 and
 * 3.12 may have published a cframe before filling it)?  Unknown = yes. */
static int pc_in_eval_loop(uintptr_t pc)
{
#if PY_VERSION_HEX >= 0x030D0000
    (void)pc;
    return 0; /* no cframe window */
#else
    if (g_eval_hi == 0 || pc == 0) {
        return 1;
    }
    return pc >= g_eval_lo && pc < g_eval_hi;
#endif
}

static void find_eval_loop(void)
{
#if PY_VERSION_HEX < 0x030D0000
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    g_eval_lo = g_eval_hi = 0;
    if (dladdr1((void *)&_PyEval_EvalFrameDefault, &info, (void **)&sym, RTLD_DL_SYMENT) && sym != NULL &&
        info.dli_saddr != NULL && sym->st_size > 0) {
        g_eval_lo = (uintptr_t)info.dli_saddr;
        g_eval_hi = g_eval_lo + (uintptr_t)sym->st_size;
    }
#endif
}

typedef struct walk_state {
    const void *end;           /* chain sentinel (3.15) or NULL */
    const rpc_range *live;
    int nlive;
    const rpc_chunk *older;
    int trust_after_leaf;      /* the leaf's link is settled */
    const void *outer_slot;    /* 3.11/3.12: where the enclosing loop's frame is */
    uintptr_t stack_lo, stack_hi; /* the thread's C stack (0, 0: not known) */
    const void *ts;            /* its thread state, live */
    const void *shim;          /* 3.12: the innermost eval loop's entry frame (rpc_innermost_shim), or NULL */
    const void *exc;           /* 3.12: next entry of the exc_info chain to match (see exc_chain_has) */
    const void *exc_base;      /*   the entry that ends it */
    uint64_t t0;
} walk_state;

static uint32_t walk_limit(uint32_t max_depth) { return 2 * max_depth + 64; }

/* Whether frame f is the frame of an executing generator on this thread's
 * exc_info chain, looked for among the next RP_EXC_LOOKAHEAD entries from
 * w->exc on: EXC_GENERATOR (its owner was shown to be an executing generator),
 * EXC_READABLE (its header is readable in place, see rpc_exc_generator_frame)
 * or EXC_NONE; on a match w->exc moves past the entry.  Generators are pushed
 * on that chain in the order their frames are linked, so a walk from the leaf
 * meets them in chain order and costs O(frames) entries.  A few entries of
 * other kinds (Cython coroutines, greenlet) or generators the frame chain
 * skips may sit in between; a frame that is not found (a shim) leaves the
 * cursor where it was and costs at most the lookahead.  *steps bounds the
 * entries visited in a walk. */
#define RP_EXC_LOOKAHEAD 8
enum { EXC_NONE = 0, EXC_READABLE = 1, EXC_GENERATOR = 2 };

static int exc_chain_has(walk_state *w, const void *f, uint32_t *steps, uint32_t limit)
{
    const void *e = w->exc;
    for (int k = 0; k < RP_EXC_LOOKAHEAD && e != NULL && e != w->exc_base && *steps < limit && rpc_ptr_ok(e, 8);
         k++) {
        (*steps)++;
        int is_generator;
        const void *next = rpc_exc_previous(e);
        if (rpc_exc_generator_frame(e, &is_generator) == f) {
            w->exc = next;
            return is_generator ? EXC_GENERATOR : EXC_READABLE;
        }
        e = next;
    }
    return EXC_NONE;
}

/* The frame in the enclosing eval loop's cframe slot (3.11/3.12), or NULL.
 * The slot is found through the current cframe's `previous`, and 3.11's
 * _PyEval_EvalFrameDefault publishes the new cframe in tstate->cframe a few
 * instructions before it stores `previous` (gcc sinks the store): a signal in
 * between finds stale stack memory there, and the slot can be anywhere -- a
 * read in place crashed the host once.  A real slot is in an enclosing C
 * frame of this thread, or in its thread state (the root cframe): read in
 * place only there, where memory is mapped whatever the value; anywhere else
 * (or with the stack bounds not known) read it fault-free, or not at all. */
static const void *read_outer_slot(const walk_state *w, uint32_t *copies)
{
    uintptr_t at = (uintptr_t)w->outer_slot;
    uintptr_t ts = (uintptr_t)w->ts;
    if ((w->stack_hi != 0 && at >= w->stack_lo && at <= w->stack_hi - sizeof(void *)) ||
        (at >= ts && at <= ts + sizeof(PyThreadState) - sizeof(void *))) {
        return *(const void *const *)w->outer_slot;
    }
    const void *outer = NULL;
    (*copies)++;
    if (!g_safe_copy || fault_free_copy(&outer, w->outer_slot, sizeof(outer)) != 0) {
        return NULL;
    }
    return outer;
}

static void walk_from(const void *f, walk_state *w, rp_record *rec, uint32_t max_depth)
{
    rp_frame *out = (rp_frame *)(rec + 1);
    uint32_t n = 0;
    int older_hit = 0, trusted = 0, outer_known = 0;
    int linked_from_proven = 0; /* f is the link of a frame exc_chain_has found to be a generator's */
    uint32_t exc_steps = 0;
    uint32_t copies = 0; /* syscalls so far: the only part of a walk whose time needs a budget */
    const void *outer = NULL; /* trusted from this frame on (3.11/3.12) */
    const rpc_chunk *older = w->older;
    uint32_t limit = walk_limit(max_depth);
    /* Room for the whole struct, though only the header is copied: the
     * accessors cast it to _PyInterpreterFrame, and a buffer smaller than
     * that type is out of bounds to the compiler. */
    _Alignas(16) unsigned char copy[sizeof(_PyInterpreterFrame) > RPC_FRAME_HEADER_SIZE ? sizeof(_PyInterpreterFrame)
                                                                                         : RPC_FRAME_HEADER_SIZE];
    for (uint32_t iter = 0; f != NULL && f != w->end; iter++) {
        if (iter >= limit || (copies > 0 && (iter % RP_CLOCK_EVERY) == RP_CLOCK_EVERY - 1 &&
                              now_ns(CLOCK_MONOTONIC) - w->t0 > RP_WALK_BUDGET_NS)) {
            rec->flags |= RP_F_TRUNCATED;
            break;
        }
        if (!rpc_ptr_ok(f, 8)) {
            rec->flags |= RP_F_BAD_FRAME;
            break;
        }
        if (!trusted && outer != NULL && f == outer) {
            trusted = 1;
        }
        const void *view = f;
        /* Once the walk has reached chunks older than `live`, callers can only
         * be older still: check the cursor first (O(1) per frame). */
        int in_stack = older_hit ? rpc_in_older_chunks(&older, f) : rpc_in_ranges(w->live, w->nlive, f);
        if (!in_stack && !older_hit && older != NULL) {
            in_stack = older_hit = rpc_in_older_chunks(&older, f);
        }
        if (!in_stack && !trusted && !outer_known && w->outer_slot != NULL) {
            /* 3.11/3.12 inside the eval loop: learn the settled frame, the
             * enclosing loop's (see read_outer_slot). */
            outer_known = 1;
            outer = read_outer_slot(w, &copies);
            if (outer != NULL && f == outer) {
                trusted = 1;
            }
        }
        int found = EXC_NONE;
        if (!in_stack && !trusted) {
            /* 3.11/3.12: an executing generator of this thread, found on
             * its exc_info chain, is alive: its frame is read in place.  The
             * frame it links to is alive as well (linked_from_proven): while
             * a generator is on the chain its `previous` is NULL (3.12, not
             * linked yet) or names the frame it returns to -- the caller's
             * frame, or the entry shim of the eval loop running it, a C
             * frame of this thread (3.11 links it before the push).  Only
             * that one link is trusted this way, not the chain beyond it. */
            found = exc_chain_has(w, f, &exc_steps, limit);
        }
        if (!in_stack && !trusted && found == EXC_NONE && !linked_from_proven && f != w->shim) {
            copies++;
            if (!g_safe_copy || fault_free_copy(copy, f, RPC_FRAME_HEADER_SIZE) != 0) {
                if (g_safe_copy) {
                    rec->flags |= RP_F_BAD_FRAME;
                    break;
                }
                /* No process_vm_readv here (seccomp): read in place, as every
                 * in-process sampler without it does. */
            } else {
                view = copy;
            }
        }
        /* Read the link first: it is the one field we need after this frame. */
        const void *prev = rpc_frame_previous(view);
        int kind = rpc_frame_kind(view);
        if (kind == RPC_FRAME_BAD) {
            rec->flags |= RP_F_BAD_FRAME;
            break;
        }
        if (found != EXC_NONE ? !rpc_frame_is_generator(view)
                              : !in_stack && view == f && rpc_frame_is_generator(view) && !rpc_generator_executing(f)) {
            rec->flags |= RP_F_BAD_FRAME; /* tripwire: not a running generator's frame */
            break;
        }
        if (kind == RPC_FRAME_PYTHON) {
            uint64_t code = rpc_frame_code(view);
            if (!rpc_ptr_ok((const void *)(uintptr_t)code, 8)) {
                rec->flags |= RP_F_BAD_FRAME;
                break;
            }
            if (n == max_depth) {
                rec->flags |= RP_F_TRUNCATED; /* deeper than max_depth: not counted */
                break;
            }
            out[n].code = code;
            out[n].instr = rpc_frame_instr(view);
            n++;
        }
        if (iter == 0 && w->trust_after_leaf) {
            trusted = 1;
        }
        linked_from_proven = found == EXC_GENERATOR;
        f = prev;
    }
    rec->nframes = (uint16_t)n;
    rec->depth = n;
}

static void walk(PyThreadState *ts, const rp_slot *s, rp_record *rec, uint32_t max_depth, const void *uctx,
                 uint64_t t0)
{
    rpc_range live[RP_LIVE_RANGES];
    walk_state w;
    w.nlive = rpc_live_ranges(ts, live, RP_LIVE_RANGES);
    w.live = live;
    w.older = w.nlive == RP_LIVE_RANGES ? rpc_chunk_after(ts, w.nlive) : NULL; /* deep stacks */
    w.end = rpc_chain_end(ts);
    w.t0 = t0;
    w.outer_slot = rpc_outer_frame_slot(ts);
    /* Below the interrupted stack pointer the thread's stack may not be
     * mapped (the main thread's grows on demand): the slot is above it. */
    uintptr_t pc, sp;
    interrupted_regs(uctx, &pc, &sp);
    w.stack_lo = sp > s->stack_lo ? sp : s->stack_lo;
    w.stack_hi = s->stack_hi;
    w.ts = ts;
    /* Not "no outer slot, so trust": in the cframe window the slot may be
     * missing because `previous` is not stored yet, and the leaf is stale. */
    w.trust_after_leaf = !pc_in_eval_loop(pc);
    uintptr_t injected = atomic_load_explicit(&g_test_outer_slot, memory_order_relaxed);
    if (injected != 0) { /* test hook: as if interrupted in that window, `previous` stale */
        w.outer_slot = (const void *)injected;
        w.trust_after_leaf = 0;
    }
    w.exc = rpc_exc_head(ts);
    w.exc_base = rpc_exc_base(ts);
    w.shim = rpc_innermost_shim(ts, atomic_load_explicit(&g_shim_offset, memory_order_relaxed));
    walk_from(rpc_first_frame(ts), &w, rec, max_depth);
    if (rec->flags & RP_F_BAD_FRAME) {
        /* On 3.11/3.12 an implausible chain is the window in which a new eval
         * loop has published its cframe but not yet its frame: current_frame
         * is stale (typically the frame being entered, not linked yet).  The
         * enclosing loop's chain is consistent then: walk it instead, which
         * loses only the frame being entered. */
        const void *outer = NULL;
        if (w.outer_slot != NULL && g_safe_copy && fault_free_copy(&outer, w.outer_slot, sizeof(outer)) == 0 &&
            outer != NULL) {
            rec->flags &= (uint16_t) ~(RP_F_BAD_FRAME | RP_F_TRUNCATED);
            /* That loop is suspended in a call, so its chain is settled --
             * if `previous` was stored.  3.11 stores it after publishing the
             * cframe, so the slot may be stale too: trust no link (this runs
             * in that window only, a few instructions, so copies are rare). */
            w.trust_after_leaf = 0;
            w.outer_slot = NULL;
            w.exc = rpc_exc_head(ts);
            walk_from(outer, &w, rec, max_depth);
        }
    }
}

/* 3.11: PyGILState_GetThisThreadState() stays this thread's main-interpreter
 * state while the thread runs a sub-interpreter (run_string swaps another
 * thread state in), so its frames would be walked as the caller's.  The GIL
 * holder (a process-wide atomic in 3.11) tells: if it is not `ts` but belongs
 * to this very thread, the thread is running that state's interpreter.  The
 * holder may be another thread's state that is being deleted, so its fields
 * are read through a fault-free copy; this costs one copy only for samples of
 * a thread that does not hold the GIL as `ts`.  3.12+ binds the GIL-state to
 * the thread state that is running, so `ts` is already the right one. */
static int running_other_interp(PyThreadState *ts)
{
#if PY_VERSION_HEX < 0x030C0000
    PyThreadState *cur = _PyThreadState_UncheckedGet();
    if (cur == NULL || cur == ts || !g_safe_copy) {
        return 0;
    }
    unsigned long thread_id = 0;
    PyInterpreterState *interp = NULL;
    if (fault_free_copy(&thread_id, (const char *)cur + offsetof(PyThreadState, thread_id), sizeof(thread_id)) != 0 ||
        thread_id != (unsigned long)pthread_self() ||
        fault_free_copy(&interp, (const char *)cur + offsetof(PyThreadState, interp), sizeof(interp)) != 0) {
        return 0;
    }
    return interp != g_main_interp;
#else
    (void)ts;
    return 0;
#endif
}

/* Handler, per-thread timers: every RP_PERF_REDRAW-th sample, draw the
 * period anew, uniform in [interval/2, 3*interval/2), so no periodic work can
 * phase-lock with the samples.  A system call (async-signal-safe), but not a
 * cheap one: it restarts the timer, which costs about as much as a signal
 * delivery, so it is amortised.  A
 * workload with a period commensurate with the drawn one sees each block of
 * samples at one random phase: unbiased, with the noise of fewer samples. */
#define RP_PERF_REDRAW 4

static uint64_t random_period(rp_slot *s)
{
    uint64_t interval = atomic_load_explicit(&g_interval_ns, memory_order_relaxed);
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return interval / 2 + ((s->rng * 0x2545F4914F6CDD1Dull) >> 11) % (interval ? interval : 1);
}

/* Returns whether it made a system call (then the caller reads the clock again). */
static int next_period(rp_slot *s, const siginfo_t *si)
{
    if (++s->perf_samples % RP_PERF_REDRAW != 0) {
        return 0;
    }
    uint64_t period = random_period(s);
    if (is_perf_signal(si)) {
        ioctl(si->si_fd, PERF_EVENT_IOC_PERIOD, &period);
    } else if (si->si_code == SI_TIMER) {
        /* POSIX timers (wall mode; cpu mode without perf): the next expiry
         * at random, then the nominal period until the next redraw.
         * timer_settime is async-signal-safe. */
        uint64_t interval = atomic_load_explicit(&g_interval_ns, memory_order_relaxed);
        struct itimerspec its = {
            .it_interval = {(time_t)(interval / 1000000000ull), (long)(interval % 1000000000ull)},
            .it_value = {(time_t)(period / 1000000000ull), (long)(period % 1000000000ull)},
        };
        timer_settime(s->timer, 0, &its, NULL);
    } else {
        return 0;
    }
    return 1;
}

static void rp_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    int saved_errno = errno;
    atomic_fetch_add(&g_active, 1);
    if (!atomic_load(&g_enabled)) {
        goto out;
    }
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    uint64_t delay = atomic_load_explicit(&g_test_delay_ns, memory_order_relaxed);
    while (delay && now_ns(CLOCK_MONOTONIC) - t0 < delay) {
        /* test hook: a slow handler, to check that stop waits for it */
    }
    rp_slot *s = slot_for_signal(si);
    /* live is loaded seq_cst: together with the seq_cst increment of g_active
     * above, either this handler sees live == 0, or whoever cleared live and
     * then loads g_active (stop, the drain freeing a retired slot) sees it
     * running.  An acquire load would allow both to miss each other. */
    if (s == NULL || !atomic_load(&s->live) ||
        !pthread_equal(s->owner, pthread_self())) {
        atomic_fetch_add_explicit(&g_unattributed, 1, memory_order_relaxed);
        goto out;
    }
    uint64_t weight = 1;
    if (si->si_code == SI_TIMER && si->si_overrun > 0) {
        weight += (uint64_t)si->si_overrun;
    }
    if (is_tick_signal(si)) {
        /* Wall mode: the wall time of the ticks that signalled this thread. */
        atomic_store_explicit(&s->inflight, 0, memory_order_relaxed);
        atomic_store_explicit(&s->label, t_label, memory_order_relaxed);
        weight = atomic_exchange(&s->wall_weight, 0);
        if (weight == 0) {
            goto out;
        }
    }
    uint32_t max_depth = atomic_load_explicit(&g_max_depth, memory_order_relaxed);
    uint64_t pos;
    rp_record *rec = rp_ring_reserve(&s->ring, (uint32_t)(sizeof(rp_record) + max_depth * sizeof(rp_frame)), &pos);
    if (rec == NULL) {
        goto out; /* full: counted by the ring */
    }
    rec->magic = RP_REC_MAGIC;
    rec->flags = 0;
    rec->nframes = 0;
    rec->depth = 0;
    rec->tid = s->tid;
    rec->time_ns = t0;
    rec->weight = weight;
    rec->cpu_ns = 0;
    if (atomic_load_explicit(&g_mode, memory_order_relaxed) == RP_MODE_WALL) {
        uint64_t cpu = now_ns(s->cpuclock);
        rec->cpu_ns = (s->last_cpu_ns && cpu >= s->last_cpu_ns) ? cpu - s->last_cpu_ns : 0;
        s->last_cpu_ns = cpu;
    }
    rec->label = t_label;
    PyThreadState *ts = rpc_this_tstate();
    if (ts == NULL) {
        rec->flags |= RP_F_NO_TSTATE;
    } else if (rpc_finalizing()) {
        rec->flags |= RP_F_FINALIZING;
    } else if (ts->interp != g_main_interp || running_other_interp(ts)) {
        rec->flags |= RP_F_OTHER_INTERP;
    } else {
        if (rpc_holds_gil(ts)) {
            rec->flags |= RP_F_HOLDS_GIL;
        }
        walk(ts, s, rec, max_depth, uctx, t0);
    }
    rec->len = (uint32_t)(sizeof(rp_record) + rec->nframes * sizeof(rp_frame));
    rp_ring_commit(&s->ring, pos, rec);
    /* The walk and the record are timed apart from re-arming the timer: the
     * redraw's system call costs about one signal delivery on a VM and would
     * hide what the walk costs per frame kind and depth. */
    uint64_t t1 = now_ns(CLOCK_MONOTONIC);
    uint64_t t2 = t1;
    if (g_timer_kind == RP_TIMER_THREAD && !is_tick_signal(si) && next_period(s, si)) {
        t2 = now_ns(CLOCK_MONOTONIC);
    }
    atomic_fetch_add_explicit(&s->samples, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->record_ns, t1 - t0, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->handler_ns, t2 - t0, memory_order_relaxed);
out:
    atomic_fetch_sub(&g_active, 1);
    errno = saved_errno;
}

/* ------------------------------------------------------------------ slots and timers */

static int open_task_clock(pid_t tid, uint64_t period)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof(attr);
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.sample_period = period;
    attr.disabled = 1;
    attr.wakeup_events = 1;
    return (int)syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

/* cpu mode: a task-clock event for thread `tid` that signals that thread. */
static int arm_perf(rp_slot *s, uint32_t idx, uint64_t first)
{
    int fd = open_task_clock((pid_t)s->tid, first);
    if (fd < 0) {
        return -1;
    }
    struct f_owner_ex owner = {F_OWNER_TID, (pid_t)s->tid};
    if (fd >= RP_FD_SLOTS || fcntl(fd, F_SETOWN_EX, &owner) != 0 || fcntl(fd, F_SETSIG, g_rt_signo) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) != 0) {
        close(fd);
        return -1;
    }
    atomic_store_explicit(&g_fd_slot[fd], (atomic_load(&s->gen) << 16) | idx, memory_order_release);
    if (ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0) {
        atomic_store(&g_fd_slot[fd], 0);
        close(fd);
        return -1;
    }
    s->perf_fd = fd;
    return 0;
}

static void close_perf(rp_slot *s)
{
    if (s->perf_fd >= 0) {
        ioctl(s->perf_fd, PERF_EVENT_IOC_DISABLE, 0);
        atomic_store(&g_fd_slot[s->perf_fd], 0);
        close(s->perf_fd);
        s->perf_fd = -1;
    }
}

static int arm_timer(rp_slot *s, uint32_t idx)
{
    s->rng = (s->tid * 0x9E3779B97F4A7C15ull) ^ (uint64_t)random() ^ 0xD1B54A32D192ED03ull;
    s->perf_samples = 0;
    if (g_cfg.mode == RP_MODE_CPU && g_use_perf &&
        arm_perf(s, idx, g_cfg.interval_ns / 2 + (uint64_t)random() % g_cfg.interval_ns) == 0) {
        s->has_timer = 1;
        return 0;
    }
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = g_rt_signo;
    sev.sigev_value.sival_ptr = encode_value(idx, atomic_load(&s->gen));
#ifdef sigev_notify_thread_id
    sev.sigev_notify_thread_id = (pid_t)s->tid;
#else
    sev._sigev_un._tid = (pid_t)s->tid;
#endif
    clockid_t clk = g_cfg.mode == RP_MODE_WALL ? CLOCK_MONOTONIC : s->cpuclock;
    if (timer_create(clk, &sev, &s->timer) != 0) {
        return -1;
    }
    /* First expiry uniform in (0, interval]: threads do not fire in
     * lock-step, and a thread that runs for less than one interval is still
     * sampled with the right probability (a later start would miss it). */
    uint64_t first = 1 + (uint64_t)(random() % (long)g_cfg.interval_ns);
    struct itimerspec its = {
        .it_interval = {(time_t)(g_cfg.interval_ns / 1000000000ull), (long)(g_cfg.interval_ns % 1000000000ull)},
        .it_value = {(time_t)(first / 1000000000ull), (long)(first % 1000000000ull)},
    };
    if (timer_settime(s->timer, 0, &its, NULL) != 0) {
        timer_delete(s->timer);
        return -1;
    }
    s->has_timer = 1;
    return 0;
}

static void disarm(rp_slot *s)
{
    if (s->has_timer) {
        if (s->perf_fd >= 0) {
            close_perf(s);
        } else {
            timer_delete(s->timer);
        }
        s->has_timer = 0;
    }
}

/* The C stack of thread (owner, tid), or 0, 0; the walk reads 3.11/3.12's
 * cframe link in place only inside it (see read_outer_slot), and makes a
 * fault-free copy instead without it.  Called with the GIL held, for the
 * calling thread or one whose thread state is listed: a Python thread deletes
 * its state, with the GIL, before its pthread exits, so its descriptor is
 * alive.  A C thread that exited with its state leaked is the exception
 * (glibc may have unmapped its descriptor): asked only while its kernel
 * thread id still names a thread of this process. */
static void thread_stack(pthread_t owner, uint64_t tid, uintptr_t *lo, uintptr_t *hi)
{
    *lo = *hi = 0;
    if (!pthread_equal(owner, pthread_self()) && syscall(SYS_tgkill, (long)getpid(), (long)tid, 0) != 0) {
        return;
    }
    pthread_attr_t attr;
    if (pthread_getattr_np(owner, &attr) != 0) {
        return;
    }
    void *addr = NULL;
    size_t size = 0;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr != NULL && size > 0) {
        *lo = (uintptr_t)addr;
        *hi = (uintptr_t)addr + size;
    }
    pthread_attr_destroy(&attr);
}

/* Claim a slot for (tid, owner); returns it with a fresh generation. */
static rp_slot *claim_slot(uint64_t tid, pthread_t owner, uint64_t ts_id, PyThreadState *ts, uint32_t *idx_out)
{
    for (uint32_t i = 0; i < RP_MAX_SLOTS; i++) {
        rp_slot *s = &g_slots[i];
        if (s->state != SLOT_FREE) {
            continue;
        }
        if (s->ring.buf == NULL || s->ring.cap < g_cfg.ring_bytes) {
            /* A ring is never unmapped: a handler that is late beyond every
             * check must still find mapped memory.  A slot's ring only grows
             * (a larger ring_bytes than any before); the smaller mapping it
             * replaces stays mapped, which bounds that cost by the number of
             * doublings.  Reset it first so the replaced ring reads as empty. */
            rp_ring fresh;
            if (rp_ring_init(&fresh, g_cfg.ring_bytes) != 0) {
                return NULL;
            }
            atomic_fetch_add(&g_dropped_retired, atomic_exchange(&s->ring.dropped, 0));
            s->ring.cap = fresh.cap;
            atomic_store(&s->ring.head, 0);
            atomic_store(&s->ring.tail, 0);
            s->ring.buf = fresh.buf;
        }
        /* Fold the old owner's counters into the retired totals. */
        atomic_fetch_add(&g_dropped_retired, atomic_exchange(&s->ring.dropped, 0));
        atomic_fetch_add(&g_samples_retired, atomic_exchange(&s->samples, 0));
        atomic_fetch_add(&g_handler_ns_retired, atomic_exchange(&s->handler_ns, 0));
        atomic_fetch_add(&g_record_ns_retired, atomic_exchange(&s->record_ns, 0));
        s->owner = owner;
        s->tid = tid;
        thread_stack(owner, tid, &s->stack_lo, &s->stack_hi);
        s->ts_id = ts_id;
        s->cpuclock = (clockid_t)(((~(clockid_t)tid) << 3) | 6); /* CPUCLOCK_PERTHREAD | SCHED */
        s->last_cpu_ns = 0;
        s->perf_fd = -1;
        s->ts = ts;
        s->blocked_valid = 0;
        s->idle_ticks = 0;
        s->quiet = 0;
        s->epoch_valid = 0;
        atomic_store(&s->inflight, 0);
        atomic_store(&s->wall_weight, 0);
        atomic_store(&s->label, 0);
        s->seen = 1;
        s->state = SLOT_LIVE;
        atomic_fetch_add_explicit(&s->gen, 1, memory_order_release);
        if (i + 1 > atomic_load_explicit(&g_slot_hwm, memory_order_relaxed)) {
            atomic_store_explicit(&g_slot_hwm, i + 1, memory_order_release);
        }
        *idx_out = i;
        return s;
    }
    return NULL;
}

static void flush_idle(rp_slot *s);

static void retire_slot(rp_slot *s)
{
    flush_idle(s); /* blocked time counted so far is kept */
    atomic_store(&s->live, 0);
    disarm(s);
    atomic_fetch_add_explicit(&s->gen, 1, memory_order_release);
    s->state = SLOT_RETIRED; /* becomes FREE once the drain emptied its ring */
}

/* The live slot of thread (tid, ts_id).  A live slot with the same tid but
 * another thread-state id belonged to a thread that exited before the sweep
 * noticed and whose tid the kernel has handed to this new thread: it is
 * retired here, so the new thread gets a slot (and a timer bound to it) of its
 * own.  The pthread_t cannot tell them apart (glibc reuses a dead thread's
 * stack, and pthread_t is an address in it); PyThreadState.id is unique for
 * the interpreter's lifetime. */
static rp_slot *find_live(uint64_t tid, uint64_t ts_id)
{
    uint32_t n = atomic_load_explicit(&g_slot_hwm, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        rp_slot *s = &g_slots[i];
        if (s->state == SLOT_LIVE && s->tid == tid) {
            if (s->ts_id == ts_id) {
                return s;
            }
            retire_slot(s);
        }
    }
    return NULL;
}

/* Give thread `tid` a slot and a timer unless it has one; returns 1 if armed. */
static int register_locked(uint64_t tid, pthread_t owner, uint64_t ts_id, PyThreadState *ts)
{
    rp_slot *found = find_live(tid, ts_id);
    if (found) {
        found->seen = 1;
        return 0;
    }
    uint32_t idx;
    rp_slot *s = claim_slot(tid, owner, ts_id, ts, &idx);
    if (s == NULL) {
        g_timer_errors++;
        return 0;
    }
    if (g_wall_tick) {
        /* No timer: the tick thread drives it.  Its CPU clock tells whether it
         * runs between ticks; no clock means the thread has exited already. */
        if (thread_cpu_ns(s->cpuclock, &s->last_cpu_ns) != 0) {
            g_timer_errors++;
            s->state = SLOT_RETIRED;
            return 0;
        }
    } else if (g_timer_kind == RP_TIMER_THREAD && arm_timer(s, idx) != 0) {
        /* The thread may have exited already (EINVAL): free the slot. */
        g_timer_errors++;
        s->state = SLOT_RETIRED;
        return 0;
    }
    atomic_store(&s->live, 1);
    return 1;
}

int rp_register_current_thread(void)
{
    pthread_mutex_lock(&g_ctl);
    int armed = 0;
    long tid = (long)syscall(SYS_gettid);
    PyThreadState *ts = PyGILState_GetThisThreadState();
    if (atomic_load(&g_enabled) && tid != g_excluded_tid && ts != NULL) {
        armed = register_locked((uint64_t)tid, pthread_self(), (uint64_t)ts->id, ts);
        rp_slot *mine = find_live((uint64_t)tid, (uint64_t)ts->id);
        if (mine != NULL) {
            atomic_store(&mine->label, t_label); /* for records written while it is blocked */
        }
    }
    pthread_mutex_unlock(&g_ctl);
    return armed;
}

static int sync_threads_locked(void)
{
    if (!atomic_load(&g_enabled) || g_main_interp == NULL) {
        return 0;
    }
    for (uint32_t i = 0; i < atomic_load_explicit(&g_slot_hwm, memory_order_relaxed); i++) {
        g_slots[i].seen = 0;
    }
    int armed = 0;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(g_main_interp); ts != NULL; ts = PyThreadState_Next(ts)) {
        uint64_t tid = (uint64_t)ts->native_thread_id;
        if (tid == 0 || (long)tid == g_excluded_tid) {
            continue;
        }
        armed += register_locked(tid, (pthread_t)ts->thread_id, (uint64_t)ts->id, ts);
    }
    for (uint32_t i = 0; i < atomic_load_explicit(&g_slot_hwm, memory_order_relaxed); i++) {
        if (g_slots[i].state == SLOT_LIVE && !g_slots[i].seen) {
            retire_slot(&g_slots[i]);
        }
    }
    return armed;
}

int rp_sync_threads(void)
{
    pthread_mutex_lock(&g_ctl);
    int n = sync_threads_locked();
    pthread_mutex_unlock(&g_ctl);
    return n;
}

void rp_exclude_tid(long tid) { g_excluded_tid = tid; }


/* ------------------------------------------------------------------ wall mode: the tick thread
 *
 * Per-thread CLOCK_MONOTONIC timers signal every thread at every interval,
 * blocked or not: a thread waiting in poll, epoll_wait, select, nanosleep,
 * sem_timedwait or recv with a timeout gets EINTR, which SA_RESTART does not
 * undo for those calls (C extensions often do not retry, and signal.pause()
 * returns), and 100 idle threads cost 100 signals per interval.  So wall mode
 * is driven by ringprof's tick thread (ticker.h), which wakes at random
 * instants and, under the control lock, for every live slot:
 *  - the thread holding the GIL (running Python) is sent a real-time signal
 *    and samples itself in its own context, like a timer signal;
 *  - any other thread is not running Python, so its Python stack cannot change
 *    until it takes the GIL again.  Its stack is read from outside, without a
 *    signal (outside.h), and kept while the thread's CPU clock does not move;
 *    each tick adds its wall time to that stack, written as one record
 *    (flush_idle) into the tick ring when the stack or label changes, a
 *    recording starts, is cut or ends, at stop, and at least once a second.
 *    A tick also skips the system calls for a thread that cannot have run
 *    Python since its stack was confirmed (no GIL hand-off since, and it was
 *    not the last holder).  If the thread executed during
 *    the read it is on CPU (C code with the GIL released, or about to take
 *    it) and is signalled instead; if it could not be read, the tick is
 *    signalled when the thread was busy and otherwise counted unattributed --
 *    never recorded on a stack the thread may have left.
 * Signalling the GIL holder from another thread is the wall-clock truth even
 * on a loaded machine: a preempted holder is delivered the signal where it was
 * preempted, which is where its wall time is going.  (It is not for CPU time:
 * cpu mode keeps per-thread perf/CPU-time timers.)
 * Each tick stands for the wall time since the previous one, in intervals,
 * rounded at random with the right odds, so a late tick loses no time.  At
 * most one tick signal per thread is in flight (inflight), so a thread that
 * blocks the signal cannot pile up queued real-time signals.
 * Needs process_vm_readv (the outside read); without it (seccomp), wall mode
 * keeps per-thread CLOCK_MONOTONIC timers. */

#define RP_QUIET_AFTER 8 /* a thread found blocked this many checks in a row is checked every 8th tick */
/* A blocked thread's intervals are written as one record per second at most
 * (and whenever its stack or label changes, a recording starts, is cut or
 * ends, and at stop): 100 idle threads then cost the drain 100 records a
 * second, not one per thread per drain. */
#define RP_IDLE_BATCH_NS 1000000000ull

static uint64_t tick_random(void)
{
    g_tick_rng ^= g_tick_rng >> 12;
    g_tick_rng ^= g_tick_rng << 25;
    g_tick_rng ^= g_tick_rng >> 27;
    return g_tick_rng * 0x2545F4914F6CDD1Dull;
}

static void send_tick(rp_slot *s, uint32_t idx, uint64_t ticks)
{
    if (ticks == 0) {
        return;
    }
    atomic_fetch_add(&s->wall_weight, ticks); /* taken by the next handler on that thread */
    int expected = 0;
    if (!atomic_compare_exchange_strong(&s->inflight, &expected, 1)) {
        return; /* the previous signal has not been handled yet: it will take these too */
    }
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    si.si_signo = g_signo;
    si.si_code = SI_QUEUE;
    si.si_pid = g_pid;
    si.si_uid = getuid();
    si.si_value.sival_ptr = encode_value(idx, atomic_load(&s->gen));
    if (syscall(SYS_rt_tgsigqueueinfo, g_pid, (pid_t)s->tid, g_signo, &si) != 0) {
        atomic_store(&s->inflight, 0); /* ESRCH: the thread is gone; the sweep retires it */
        return;
    }
    atomic_fetch_add_explicit(&g_signals_sent, 1, memory_order_relaxed);
}

static int ensure_blocked_buffer(rp_slot *s)
{
    if (s->blocked == NULL) {
        /* Allocated once per slot and never freed, like the rings. */
        void *p = mmap(NULL, RP_MAX_DEPTH_LIMIT * sizeof(rp_frame), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            return -1;
        }
        s->blocked = p;
    }
    return 0;
}

/* Write a blocked thread's pending intervals as one record (control lock held). */
static void flush_idle(rp_slot *s)
{
    if (s->idle_ticks == 0 || !s->blocked_valid) {
        return;
    }
    uint32_t len = (uint32_t)(sizeof(rp_record) + s->blocked_n * sizeof(rp_frame));
    uint64_t pos;
    rp_record *rec = rp_ring_reserve(&g_tick_ring, len, &pos);
    if (rec != NULL) {
        rec->magic = RP_REC_MAGIC;
        rec->len = len;
        rec->nframes = s->blocked_n;
        rec->flags = (uint16_t)(s->blocked_flags | RP_F_BLOCKED);
        rec->depth = s->blocked_n;
        rec->tid = s->tid;
        rec->time_ns = s->idle_t0;
        rec->weight = s->idle_ticks;
        rec->cpu_ns = 0;
        rec->label = s->idle_label;
        memcpy(rec + 1, s->blocked, s->blocked_n * sizeof(rp_frame));
        rp_ring_commit(&g_tick_ring, pos, rec);
        atomic_fetch_add_explicit(&g_blocked_records, 1, memory_order_relaxed);
    }
    s->idle_ticks = 0;
}

/* Read a thread's stack from outside into s->blocked.  0: replaced; -2: the
 * thread executed during the read (it is on CPU: the copy may be torn);
 * -1: unreadable. */
static rp_frame g_outside_frames[RP_MAX_DEPTH_LIMIT]; /* tick thread only */

static int read_blocked_stack(rp_slot *s)
{
    if (ensure_blocked_buffer(s) != 0) {
        return -1;
    }
    uint64_t c1, c2;
    if (thread_cpu_ns(s->cpuclock, &c1) != 0) {
        return -1;
    }
    uint16_t flags = 0;
    int n = rp_read_stack_outside(g_pid, s->ts, g_outside_frames, atomic_load(&g_max_depth), &flags);
    if (n < 0) {
        return -1;
    }
    if (thread_cpu_ns(s->cpuclock, &c2) != 0) {
        return -1; /* it exited during the read */
    }
    if (c2 != c1) {
        return -2;
    }
    flush_idle(s); /* intervals counted so far belong to the previous stack */
    memcpy(s->blocked, g_outside_frames, (size_t)n * sizeof(rp_frame));
    s->blocked_n = (uint16_t)n;
    s->blocked_flags = flags;
    s->blocked_cpu = c1;
    s->blocked_valid = 1;
    return 0;
}

static void count_blocked(rp_slot *s, uint64_t now, uint64_t ticks)
{
    if (ticks == 0) {
        return;
    }
    uint64_t label = atomic_load_explicit(&s->label, memory_order_relaxed);
    if (s->idle_ticks != 0 && label != s->idle_label) {
        flush_idle(s); /* the intervals so far carry the label they were counted under */
    }
    if (s->idle_ticks == 0) {
        s->idle_t0 = now;
        s->idle_label = label;
    }
    s->idle_ticks += ticks;
    if (s->idle_ticks >= g_idle_batch) {
        flush_idle(s);
    }
}

typedef struct gil_view {
    PyThreadState *holder;      /* holds the GIL now, or NULL */
    PyThreadState *last_holder; /* held it last (may hold it now) */
    unsigned long switches;     /* holder changes so far */
} gil_view;

static void wall_tick_slot(rp_slot *s, uint32_t idx, const gil_view *gil, uint64_t tick_no, uint64_t now,
                           uint64_t elapsed, uint64_t ticks)
{
    int released = 0; /* held the GIL when this tick began, released it since */
    if (gil->holder != NULL && s->ts == gil->holder) {
        s->quiet = 0; /* it runs: its blocked stack will change */
        s->epoch_valid = 0;
        /* Read the holder again right before signalling: the GIL view is taken
         * once per tick, and walking the other slots (system calls, or the tick
         * thread being preempted) can take long enough for this thread to
         * release the GIL and block in C -- where a signal makes poll() or
         * nanosleep() return EINTR.  A thread that released it since is
         * treated as blocked, below.  (The window left is the few
         * microseconds between this read and the signal's delivery.) */
        if (rpc_gil_holder(g_main_interp) == s->ts) {
            flush_idle(s);
            send_tick(s, idx, ticks);
            return;
        }
        released = 1;
    }
    /* No GIL hand-off since its stack was last confirmed, and it was not the
     * last holder: it has not run Python since, so its Python stack is the one
     * read -- without a system call.  (An idle process, or one where a single
     * thread runs Python, checks nobody.) */
    if (s->blocked_valid && s->epoch_valid && gil->switches == s->gil_epoch && gil->last_holder != s->ts) {
        count_blocked(s, now, ticks);
        return;
    }
    /* Reading another thread's CPU clock is a system call (~1 us): a thread
     * found blocked RP_QUIET_AFTER checks in a row is checked only every 8th
     * tick (staggered by slot); meanwhile its intervals go to its blocked
     * stack, so a long-idle thread that wakes up and blocks elsewhere has at
     * most 7 ticks recorded on its previous stack. */
    if (s->blocked_valid && s->quiet >= RP_QUIET_AFTER && (tick_no + idx) % 8 != 0) {
        count_blocked(s, now, ticks);
        return;
    }
    uint64_t cpu;
    if (thread_cpu_ns(s->cpuclock, &cpu) != 0) {
        return; /* the thread is gone: the sweep retires it */
    }
    uint64_t used = cpu > s->last_cpu_ns ? cpu - s->last_cpu_ns : 0;
    s->last_cpu_ns = cpu;
    s->quiet = used ? 0 : s->quiet + 1;
    s->epoch_valid = 0;
    if (!s->blocked_valid || cpu != s->blocked_cpu) {
        int rc = read_blocked_stack(s);
        if (rc == -2 || (rc == -1 && 2 * used >= elapsed)) {
            if (released) {
                /* On its way into a blocking call, most likely: no signal. */
                atomic_fetch_add_explicit(&g_unattributed, ticks, memory_order_relaxed);
                return;
            }
            flush_idle(s);
            send_tick(s, idx, ticks); /* on CPU now: it samples itself */
            return;
        }
        if (rc == -1) {
            atomic_fetch_add_explicit(&g_unattributed, ticks, memory_order_relaxed);
            return;
        }
    }
    /* Its stack is confirmed as of now; the GIL state was read before. */
    s->gil_epoch = gil->switches;
    s->epoch_valid = gil->last_holder != s->ts;
    count_blocked(s, now, ticks);
}

static int g_tick_handler_ok; /* our handler is still installed (checked every 64th tick) */

static uint64_t intervals_of(uint64_t elapsed)
{
    uint64_t interval = g_cfg.interval_ns ? g_cfg.interval_ns : 1;
    uint64_t ticks = elapsed / interval;
    if ((tick_random() >> 11) % interval < elapsed - ticks * interval) {
        ticks++;
    }
    return ticks;
}

static void wall_tick(uint64_t now, uint64_t elapsed)
{
    pthread_mutex_lock(&g_ctl);
    uint64_t tick_no = rp_ticker_ticks();
    if (tick_no % 64 == 0) {
        g_tick_handler_ok = rp_handler_installed(); /* a system call: not on every tick */
    }
    if (!atomic_load(&g_enabled) || !g_wall_tick || !g_tick_handler_ok || rpc_finalizing()) {
        pthread_mutex_unlock(&g_ctl); /* a replaced handler: the drain reports it */
        return;
    }
    uint64_t ticks = intervals_of(elapsed);
    gil_view gil;
    gil.last_holder = rpc_gil_switches(g_main_interp, &gil.switches); /* the count first */
    gil.holder = rpc_gil_holder(g_main_interp);
    uint64_t delay = atomic_load_explicit(&g_test_tick_delay_ns, memory_order_relaxed);
    if (delay) { /* a tick thread preempted right after its GIL view (the tick thread, not a handler) */
        struct timespec ts = {(time_t)(delay / 1000000000u), (long)(delay % 1000000000u)};
        nanosleep(&ts, NULL);
    }
    uint32_t n = atomic_load_explicit(&g_slot_hwm, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        if (g_slots[i].state == SLOT_LIVE) {
            wall_tick_slot(&g_slots[i], i, &gil, tick_no, now, elapsed, ticks);
        }
    }
    pthread_mutex_unlock(&g_ctl);
}

/* At stop, after the tick thread has ended (control lock held): the wall
 * time since its last tick goes to the threads that are still blocked on the
 * stack read for them (their CPU clock has not moved since).  Threads that
 * ran meanwhile are not signalled any more; that remainder is theirs to lose
 * (less than one tick interval, plus the stop itself). */
static void account_final_interval(uint64_t elapsed)
{
    uint64_t ticks = intervals_of(elapsed);
    /* Stamped at the start of the interval: a recording that ended at the stop
     * keeps samples up to its end time. */
    uint64_t since = now_ns(CLOCK_MONOTONIC) - elapsed;
    for (uint32_t i = 0; i < atomic_load_explicit(&g_slot_hwm, memory_order_relaxed); i++) {
        rp_slot *s = &g_slots[i];
        uint64_t cpu;
        if (s->state == SLOT_LIVE && s->blocked_valid && thread_cpu_ns(s->cpuclock, &cpu) == 0 &&
            cpu == s->blocked_cpu) {
            count_blocked(s, since, ticks);
        }
    }
}

void rp_flush_blocked(void)
{
    pthread_mutex_lock(&g_ctl);
    for (uint32_t i = 0; i < atomic_load_explicit(&g_slot_hwm, memory_order_relaxed); i++) {
        if (g_slots[i].state == SLOT_LIVE) {
            flush_idle(&g_slots[i]);
        }
    }
    pthread_mutex_unlock(&g_ctl);
}

int rp_uses_wall_tick(void) { return g_wall_tick && atomic_load(&g_enabled); }

/* ------------------------------------------------------------------ fork */

static sigset_t prof_set(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPROF);
    if (g_rt_signo > 0) {
        sigaddset(&set, g_rt_signo);
    }
    return set;
}

/* Blocking the signal around fork() keeps a SIGPROF storm from restarting
 * clone() forever (gperftools issue 278) and any handler from running mid-fork.
 * The forking thread's own mask is saved (per thread: two threads may fork at
 * once) and given back afterwards, in parent and child: a thread that had the
 * signal blocked keeps it blocked. */
static __thread sigset_t t_fork_saved_mask __attribute__((tls_model("initial-exec")));

static void atfork_prepare(void)
{
    sigset_t set = prof_set();
    pthread_sigmask(SIG_BLOCK, &set, &t_fork_saved_mask);
}

static void restore_fork_mask(void)
{
    sigset_t set = prof_set();
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigismember(&set, sig) == 1 && sigismember(&t_fork_saved_mask, sig) == 0) {
            sigaddset(&unblock, sig);
        }
    }
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
}

static void atfork_parent(void) { restore_fork_mask(); }

/* In the child only the forking thread exists and no timer was inherited.
 * Async-signal-safe work only: forget every slot and give SIGPROF back. */
static void atfork_child(void)
{
    atomic_store(&g_enabled, 0);
    g_pid = getpid();
    atomic_store(&g_active, 0);
    pthread_mutex_init(&g_ctl, NULL);
    pthread_mutex_init(&g_lifecycle, NULL);
    /* The tick thread does not exist here. */
    rp_ticker_forget_in_child();
    g_wall_tick = 0;
    if (g_tick_ring.buf) {
        rp_ring_reset(&g_tick_ring);
    }
    atomic_store(&g_signals_sent, 0);
    atomic_store(&g_blocked_records, 0);
    for (uint32_t i = 0; i < atomic_load_explicit(&g_slot_hwm, memory_order_relaxed); i++) {
        rp_slot *s = &g_slots[i];
        atomic_store(&s->live, 0);
        atomic_fetch_add(&s->gen, 1);
        if (s->perf_fd >= 0) {
            /* Inherited fds of events that count the parent's threads and
             * signal them: close ours (close is async-signal-safe). */
            atomic_store(&g_fd_slot[s->perf_fd], 0);
            close(s->perf_fd);
            s->perf_fd = -1;
        }
        s->has_timer = 0; /* timers are not inherited */
        s->idle_ticks = 0;
        s->blocked_valid = 0;
        s->state = SLOT_FREE;
        if (s->ring.buf) {
            rp_ring_reset(&s->ring);
        }
        atomic_store(&s->samples, 0);
        atomic_store(&s->handler_ns, 0);
        atomic_store(&s->record_ns, 0);
    }
    atomic_store(&g_unattributed, 0);
    atomic_store(&g_dropped_retired, 0);
    atomic_store(&g_samples_retired, 0);
    atomic_store(&g_handler_ns_retired, 0);
    atomic_store(&g_record_ns_retired, 0);
    if (g_installed) {
        sigaction(g_signo, &g_old_action, NULL);
        g_installed = 0;
    }
    restore_fork_mask();
}

/* ------------------------------------------------------------------ the signal */

/* Per-thread samples travel on a real-time signal, not SIGPROF: SIGPROF is
 * shared with every other profiler and with ITIMER_PROF users (CPython's own
 * test_signal), which install, reset (SIG_DFL terminates the process) and
 * ignore it at will.  The real-time signal is chosen once per process:
 *   - RINGPROF_SIGNAL=N, =SIGRTMIN+k or =SIGRTMAX-k picks it explicitly (it
 *     must be a real-time signal);
 *   - otherwise the highest signal in SIGRTMAX-1..SIGRTMIN whose disposition
 *     is SIG_DFL (not SIGRTMAX itself: see choose_rt_signal): libraries that allocate real-time signals (glibc's own
 *     internal ones sit below SIGRTMIN) conventionally count up from SIGRTMIN.
 * SIGPROF is used only by the ITIMER_PROF fallback. */
static int parse_signal_env(const char *v)
{
    char *end = NULL;
    long base = 0, off = 0;
    int sign = 1;
    if (strncmp(v, "SIGRTMIN", 8) == 0) {
        base = SIGRTMIN;
        v += 8;
    } else if (strncmp(v, "SIGRTMAX", 8) == 0) {
        base = SIGRTMAX;
        v += 8;
    }
    if (base && *v == '\0') {
        return (int)base;
    }
    if (base) {
        if (*v != '+' && *v != '-') {
            return -1;
        }
        sign = *v == '-' ? -1 : 1;
        v++;
    }
    off = strtol(v, &end, 10);
    if (end == v || *end != '\0') {
        return -1;
    }
    long sig = base + sign * off;
    return (sig >= SIGRTMIN && sig <= SIGRTMAX) ? (int)sig : -1;
}

static int choose_rt_signal(char *err, size_t errlen)
{
    if (g_rt_signo > 0) {
        return 0;
    }
    const char *env = getenv("RINGPROF_SIGNAL");
    if (env != NULL && *env != '\0') {
        int sig = parse_signal_env(env);
        if (sig < 0) {
            snprintf(err, errlen, "RINGPROF_SIGNAL=%s is not a real-time signal (%d..%d, SIGRTMIN+k or SIGRTMAX-k)",
                     env, SIGRTMIN, SIGRTMAX);
            return -1;
        }
        g_rt_signo = sig;
        return 0;
    }
    /* From SIGRTMAX - 1 down: tools that intercept sigaction with a table of
     * 64 entries (signals 0..63) mishandle signal 64 -- GCC 16's AddressSanitizer
     * reports another handler on SIGRTMAX (64 on Linux) than the one installed,
     * which made the drain conclude our handler had been replaced. */
    for (int sig = SIGRTMAX - 1; sig >= SIGRTMIN; sig--) {
        struct sigaction cur;
        if (sigaction(sig, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) {
            g_rt_signo = sig;
            return 0;
        }
    }
    snprintf(err, errlen, "no free real-time signal (every one in %d..%d has a handler); set RINGPROF_SIGNAL",
             SIGRTMIN, SIGRTMAX);
    return -1;
}

int rp_signal_number(void)
{
    char err[256];
    pthread_mutex_lock(&g_ctl);
    int rc = choose_rt_signal(err, sizeof(err));
    pthread_mutex_unlock(&g_ctl);
    return rc == 0 ? g_rt_signo : -1;
}

/* ------------------------------------------------------------------ start/stop */

static int foreign_handler_of(int sig, char *desc, size_t desclen)
{
    struct sigaction cur;
    if (sig <= 0 || sigaction(sig, NULL, &cur) != 0) {
        return 0;
    }
    void *h = (cur.sa_flags & SA_SIGINFO) ? (void *)cur.sa_sigaction : (void *)cur.sa_handler;
    if (h == (void *)SIG_DFL || h == (void *)SIG_IGN || h == (void *)rp_handler) {
        return 0;
    }
    Dl_info info;
    if (dladdr(h, &info) && info.dli_fname) {
        snprintf(desc, desclen, "%s in %s", info.dli_sname ? info.dli_sname : "an unnamed function", info.dli_fname);
    } else {
        snprintf(desc, desclen, "a handler at %p", h);
    }
    return 1;
}

int rp_foreign_handler(char *desc, size_t desclen) { return foreign_handler_of(SIGPROF, desc, desclen); }

int rp_handler_installed(void)
{
    struct sigaction cur;
    if (g_signo <= 0 || sigaction(g_signo, NULL, &cur) != 0) {
        return 0;
    }
    return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == rp_handler;
}

/* Test hook (rp_set_layout_override): check a copy of the interpreter's debug
 * offsets with one field replaced, so the refusal path can be exercised on a
 * healthy interpreter.  Never set outside tests. */
#ifdef RPC_HAS_DEBUG_OFFSETS
static int g_layout_override;
static size_t g_layout_override_at;
static uint64_t g_layout_override_value;
#endif

int rp_set_layout_override(int on, size_t at, uint64_t value)
{
#ifdef RPC_HAS_DEBUG_OFFSETS
    g_layout_override = on;
    g_layout_override_at = at;
    g_layout_override_value = value;
    return 0;
#else
    (void)on;
    (void)at;
    (void)value;
    return -1; /* no debug offsets before 3.13 */
#endif
}

int rp_verify_layout(char *err, size_t errlen)
{
#ifdef RPC_HAS_DEBUG_OFFSETS
    if (g_layout_override) {
        return rpc_verify_layout_with(g_layout_override_at, g_layout_override_value, err, errlen) == 0 ? 0 : -1;
    }
#endif
    return rpc_verify_layout(err, errlen);
}

int rp_is_enabled(void) { return atomic_load(&g_enabled); }
int rp_timer_kind(void) { return g_timer_kind; }

/* RINGPROF_PERF=0 keeps cpu mode on POSIX CPU-time timers. */
static int perf_allowed(void)
{
    const char *v = getenv("RINGPROF_PERF");
    return v == NULL || strcmp(v, "0") != 0;
}

/* RINGPROF_WALL_TICK=0 keeps wall mode on per-thread CLOCK_MONOTONIC timers
 * (every thread signalled at every interval; for comparisons). */
static int wall_tick_allowed(void)
{
    const char *v = getenv("RINGPROF_WALL_TICK");
    return v == NULL || strcmp(v, "0") != 0;
}

int rp_uses_perf(void) { return g_timer_kind == RP_TIMER_THREAD && g_cfg.mode == RP_MODE_CPU && g_use_perf; }

static int start_locked(const rp_config *cfg, char *err, size_t errlen)
{
    if (atomic_load(&g_enabled)) {
        snprintf(err, errlen, "the sampler is already running in this process");
        return -1;
    }
    if (rp_verify_layout(err, errlen) != 0) {
        return -1;
    }
    char desc[512];
    int kind = cfg->timer_kind;
    int signo = SIGPROF;
    if (kind == RP_TIMER_THREAD) {
        if (choose_rt_signal(err, errlen) != 0) {
            return -1;
        }
        signo = g_rt_signo;
        if (foreign_handler_of(signo, desc, sizeof(desc))) {
            snprintf(err, errlen, "signal %d (RINGPROF_SIGNAL) is already handled by %s; choose another", signo, desc);
            return -1;
        }
    } else if (foreign_handler_of(SIGPROF, desc, sizeof(desc))) {
        /* The ITIMER_PROF fallback needs SIGPROF itself. */
        snprintf(err, errlen, "SIGPROF is already handled by %s; refusing to take it over", desc);
        return -1;
    }
    if (cfg->interval_ns < 50000 || cfg->max_depth < 1 || cfg->max_depth > RP_MAX_DEPTH_LIMIT ||
        cfg->ring_bytes < 4096 || (cfg->ring_bytes & (cfg->ring_bytes - 1)) ||
        cfg->ring_bytes < sizeof(rp_record) + cfg->max_depth * sizeof(rp_frame)) {
        snprintf(err, errlen, "invalid sampler configuration");
        return -1;
    }
    if (kind == RP_TIMER_THREAD) {
        /* Probe: per-thread timers can be missing (old kernels, seccomp,
         * non-Linux).  Failing here lets the caller fall back to ITIMER_PROF. */
        struct sigevent sev;
        timer_t probe;
        memset(&sev, 0, sizeof(sev));
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = signo;
#ifdef sigev_notify_thread_id
        sev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
#else
        sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
#endif
        if (timer_create(CLOCK_MONOTONIC, &sev, &probe) != 0) {
            snprintf(err, errlen, "per-thread timers are unavailable: timer_create: %s", strerror(errno));
            return -1;
        }
        timer_delete(probe);
        g_use_perf = 0;
        if (cfg->mode == RP_MODE_CPU && perf_allowed()) {
            int fd = open_task_clock((pid_t)syscall(SYS_gettid), cfg->interval_ns);
            if (fd >= 0) {
                close(fd);
                g_use_perf = 1;
            }
        }
    }
    if (kind == RP_TIMER_ITIMER) {
        if (cfg->mode == RP_MODE_WALL) {
            snprintf(err, errlen, "wall mode needs per-thread timers (timer_create)");
            return -1;
        }
        struct itimerval cur;
        if (getitimer(ITIMER_PROF, &cur) == 0 && (cur.it_value.tv_sec || cur.it_value.tv_usec)) {
            snprintf(err, errlen, "ITIMER_PROF is already armed by another profiler in this process");
            return -1;
        }
    }
    g_cfg = *cfg;
    atomic_store(&g_max_depth, cfg->max_depth);
    atomic_store(&g_mode, cfg->mode);
    atomic_store(&g_interval_ns, cfg->interval_ns);
    g_timer_kind = kind;
    g_signo = signo;
    g_pid = getpid();
    {
        uint64_t probe_src = 42, probe_dst = 0;
        g_safe_copy = fault_free_copy(&probe_dst, &probe_src, sizeof(probe_src)) == 0 && probe_dst == 42;
    }
    g_main_interp = PyInterpreterState_Main();
    find_eval_loop();
    {
        PyThreadState *self_ts = rpc_this_tstate();
        long offset = self_ts != NULL ? rpc_measure_shim_offset(self_ts) : 0;
        atomic_store(&g_shim_offset, offset > -RP_SHIM_OFFSET_MAX && offset < RP_SHIM_OFFSET_MAX ? offset : 0);
    }
    g_wall_tick = kind == RP_TIMER_THREAD && cfg->mode == RP_MODE_WALL && g_safe_copy && wall_tick_allowed();
    if (g_wall_tick) {
        if (g_tick_ring.buf == NULL && rp_ring_init(&g_tick_ring, RP_TICK_RING_BYTES) != 0) {
            g_wall_tick = 0; /* no memory for it: per-thread timers */
        }
        uint64_t batch = RP_IDLE_BATCH_NS / cfg->interval_ns;
        g_idle_batch = batch ? batch : 1;
        g_tick_rng = now_ns(CLOCK_MONOTONIC) ^ ((uint64_t)getpid() << 32) ^ 0xD1B54A32D192ED03ull;
        g_tick_handler_ok = 1;
    }
    if (!g_atfork_registered) {
        if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0) {
            snprintf(err, errlen, "pthread_atfork failed");
            return -1;
        }
        g_atfork_registered = 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = rp_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(g_signo, &sa, &g_old_action) != 0) {
        snprintf(err, errlen, "sigaction(%d) failed: %s", signo, strerror(errno));
        return -1;
    }
    g_installed = 1;
    atomic_store(&g_enabled, 1);
    sync_threads_locked();
    if (g_wall_tick && rp_ticker_start(cfg->interval_ns, wall_tick, err, errlen) != 0) {
        atomic_store(&g_enabled, 0);
        for (uint32_t i = 0; i < atomic_load_explicit(&g_slot_hwm, memory_order_relaxed); i++) {
            if (g_slots[i].state == SLOT_LIVE) {
                retire_slot(&g_slots[i]);
            }
        }
        g_wall_tick = 0;
        return -1; /* the handler stays installed and idle, as after a stop */
    }
    if (kind == RP_TIMER_ITIMER) {
        struct itimerval itv = {
            .it_interval = {(time_t)(cfg->interval_ns / 1000000000ull), (long)((cfg->interval_ns % 1000000000ull) / 1000)},
            .it_value = {(time_t)(cfg->interval_ns / 1000000000ull), (long)((cfg->interval_ns % 1000000000ull) / 1000)},
        };
        if (setitimer(ITIMER_PROF, &itv, NULL) != 0) {
            snprintf(err, errlen, "setitimer(ITIMER_PROF) failed: %s", strerror(errno));
            atomic_store(&g_enabled, 0);
            sigaction(g_signo, &g_old_action, NULL);
            g_installed = 0;
            return -1;
        }
    }
    return 0;
}

int rp_start(const rp_config *cfg, char *err, size_t errlen)
{
    pthread_mutex_lock(&g_lifecycle);
    pthread_mutex_lock(&g_ctl);
    int rc = start_locked(cfg, err, errlen);
    pthread_mutex_unlock(&g_ctl);
    pthread_mutex_unlock(&g_lifecycle);
    return rc;
}

static int stop_locked(char *err, size_t errlen)
{
    atomic_store(&g_enabled, 0);
    if (g_timer_kind == RP_TIMER_ITIMER) {
        /* Disarm ITIMER_PROF -- unless another library took SIGPROF over and
         * re-armed the itimer with a period of its own: that timer is theirs. */
        struct itimerval cur;
        uint64_t ours_us = g_cfg.interval_ns / 1000;
        if (rp_handler_installed() || getitimer(ITIMER_PROF, &cur) != 0 ||
            (uint64_t)cur.it_interval.tv_sec * 1000000ull + (uint64_t)cur.it_interval.tv_usec == ours_us) {
            struct itimerval zero;
            memset(&zero, 0, sizeof(zero));
            setitimer(ITIMER_PROF, &zero, NULL);
        }
    }
    for (uint32_t i = 0; i < atomic_load_explicit(&g_slot_hwm, memory_order_relaxed); i++) {
        if (g_slots[i].state == SLOT_LIVE) {
            retire_slot(&g_slots[i]);
        }
    }
    /* Wait for handlers that already started, however long they take: one
     * that passed its checks before enabled/live were cleared may still be
     * writing into its ring.  Every handler is bounded (RP_WALK_LIMIT frames),
     * so this ends; returning earlier would break "stop is synchronous".  A
     * handler that starts from now on sees enabled == 0 (or a bumped slot
     * generation after a restart) and touches nothing. */
    while (atomic_load(&g_active) != 0) {
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    if (g_installed && !rp_handler_installed()) {
        /* Someone replaced our handler while we ran: theirs stays. */
        g_installed = 0;
    }
    if (g_installed) {
        /* A signal may still be queued; SIG_IGN discards pending instances on
         * every thread, so restoring SIG_DFL cannot terminate the process. */
        struct sigaction ign;
        memset(&ign, 0, sizeof(ign));
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        sigaction(g_signo, &ign, NULL);
        if (g_signo != SIGPROF) {
            /* The real-time signal was free when we chose it, so nobody's
             * disposition is lost by keeping ours: the handler stays, and
             * returns at once while sampling is off.  A timer or perf signal
             * generated after the flush above (one that was in flight in the
             * kernel when its timer was deleted) then finds a handler that
             * does nothing, not SIG_DFL, which terminates: start/stop storms
             * were killed by that under load. */
            struct sigaction keep;
            memset(&keep, 0, sizeof(keep));
            keep.sa_sigaction = rp_handler;
            keep.sa_flags = SA_SIGINFO | SA_RESTART;
            sigemptyset(&keep.sa_mask);
            sigaction(g_signo, &keep, NULL);
            g_installed = 0;
            return 0;
        }
        if (sigaction(g_signo, &g_old_action, NULL) != 0) {
            snprintf(err, errlen, "could not restore the previous handler of signal %d: %s", g_signo, strerror(errno));
            g_installed = 0;
            return -1;
        }
        g_installed = 0;
    }
    return 0;
}

int rp_stop(char *err, size_t errlen)
{
    pthread_mutex_lock(&g_lifecycle);
    uint64_t since_last_tick = rp_ticker_stop(); /* its last tick has returned: no more tick signals */
    pthread_mutex_lock(&g_ctl);
    if (g_wall_tick && atomic_load(&g_enabled)) {
        account_final_interval(since_last_tick);
    }
    int rc = stop_locked(err, errlen); /* retiring a slot writes its pending blocked time */
    g_wall_tick = 0;
    pthread_mutex_unlock(&g_ctl);
    pthread_mutex_unlock(&g_lifecycle);
    return rc;
}

/* ------------------------------------------------------------------ drain */

static _Atomic uint32_t g_drain_fill_ppm; /* written under g_ctl; read without it (a hint for pacing) */

static uint32_t fill_ppm(uint64_t used, uint64_t cap) { return cap ? (uint32_t)(used * 1000000u / cap) : 0; }

uint64_t rp_drain_prepare(void)
{
    uint64_t n = 0;
    uint32_t fullest = 0;
    pthread_mutex_lock(&g_ctl);
    for (uint32_t i = 0; i < atomic_load_explicit(&g_slot_hwm, memory_order_relaxed); i++) {
        rp_slot *s = &g_slots[i];
        s->snap = s->ring.buf ? atomic_load_explicit(&s->ring.head, memory_order_acquire) : 0;
        if (s->state != SLOT_FREE && s->ring.buf) {
            uint64_t used = s->snap - atomic_load_explicit(&s->ring.tail, memory_order_relaxed);
            n += used;
            uint32_t f = fill_ppm(used, s->ring.cap);
            fullest = f > fullest ? f : fullest;
        }
    }
    if (g_tick_ring.buf) {
        g_tick_snap = atomic_load_explicit(&g_tick_ring.head, memory_order_acquire);
        uint64_t used = g_tick_snap - atomic_load_explicit(&g_tick_ring.tail, memory_order_relaxed);
        n += used;
        uint32_t f = fill_ppm(used, g_tick_ring.cap);
        fullest = f > fullest ? f : fullest;
    }
    atomic_store_explicit(&g_drain_fill_ppm, fullest, memory_order_relaxed);
    pthread_mutex_unlock(&g_ctl);
    return n;
}

uint32_t rp_drain_fill_ppm(void)
{
    return atomic_load_explicit(&g_drain_fill_ppm, memory_order_relaxed);
}

uint64_t rp_drain(uint8_t *out, uint64_t cap)
{
    uint64_t n = 0;
    pthread_mutex_lock(&g_ctl);
    for (uint32_t i = 0; i < atomic_load_explicit(&g_slot_hwm, memory_order_relaxed); i++) {
        rp_slot *s = &g_slots[i];
        if (s->state == SLOT_FREE || s->ring.buf == NULL) {
            continue;
        }
        n += rp_ring_copy_out(&s->ring, out + n, cap - n, s->snap);
        if (s->state == SLOT_RETIRED && rp_ring_pending(&s->ring) == 0 && atomic_load(&g_active) == 0) {
            s->state = SLOT_FREE;
        }
    }
    if (g_tick_ring.buf) {
        n += rp_ring_copy_out(&g_tick_ring, out + n, cap - n, g_tick_snap);
    }
    pthread_mutex_unlock(&g_ctl);
    return n;
}

void rp_get_stats(rp_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&g_ctl);
    st->samples = atomic_load(&g_samples_retired);
    st->dropped = atomic_load(&g_dropped_retired);
    st->handler_ns = atomic_load(&g_handler_ns_retired);
    st->record_ns = atomic_load(&g_record_ns_retired);
    for (uint32_t i = 0; i < atomic_load_explicit(&g_slot_hwm, memory_order_relaxed); i++) {
        rp_slot *s = &g_slots[i];
        st->samples += atomic_load(&s->samples);
        st->dropped += atomic_load(&s->ring.dropped);
        st->handler_ns += atomic_load(&s->handler_ns);
        st->record_ns += atomic_load(&s->record_ns);
        st->threads += s->state == SLOT_LIVE;
    }
    st->unattributed = atomic_load(&g_unattributed);
    st->timer_errors = g_timer_errors;
    st->dropped += atomic_load(&g_tick_ring.dropped);
    st->ticks = rp_ticker_ticks();
    st->tick_signals = atomic_load(&g_signals_sent);
    st->blocked_records = atomic_load(&g_blocked_records);
    pthread_mutex_unlock(&g_ctl);
}

/* Wall mode on the tick thread: a blocked thread's records are written by the
 * tick thread, which cannot read this thread's TLS, so the label is also
 * published in its slot (found once, then cached with its generation). */
static __thread rp_slot *t_slot __attribute__((tls_model("initial-exec")));
static __thread uint64_t t_slot_gen __attribute__((tls_model("initial-exec")));

void rp_set_thread_label(uint64_t label)
{
    t_label = label;
    if (!g_wall_tick) {
        return;
    }
    rp_slot *s = t_slot;
    if (s == NULL || atomic_load_explicit(&s->gen, memory_order_acquire) != t_slot_gen) {
        s = NULL;
        pthread_t self = pthread_self();
        uint32_t n = atomic_load_explicit(&g_slot_hwm, memory_order_acquire);
        for (uint32_t i = 0; i < n && s == NULL; i++) {
            uint64_t gen = atomic_load_explicit(&g_slots[i].gen, memory_order_acquire);
            if (atomic_load(&g_slots[i].live) && pthread_equal(g_slots[i].owner, self) &&
                atomic_load(&g_slots[i].gen) == gen) {
                s = &g_slots[i];
                t_slot_gen = gen;
            }
        }
        t_slot = s;
    }
    if (s != NULL) {
        atomic_store_explicit(&s->label, label, memory_order_relaxed);
        if (s->idle_ticks != 0) {
            /* Intervals counted under the previous label are written now:
             * once the thread stops using a label set, ringprof may release
             * it at the next drain, and a later record must not name it. */
            pthread_mutex_lock(&g_ctl);
            if (t_slot == s && atomic_load(&s->gen) == t_slot_gen) {
                flush_idle(s);
            }
            pthread_mutex_unlock(&g_ctl);
        }
    }
}
uint64_t rp_get_thread_label(void) { return t_label; }

int rp_active_handlers(void) { return atomic_load(&g_active); }
void rp_test_set_handler_delay(uint64_t ns) { atomic_store(&g_test_delay_ns, ns); }
void rp_test_set_thread_clock_zero(int on) { atomic_store(&g_test_clock_zero, on); }
void rp_test_set_tick_delay(uint64_t ns) { atomic_store(&g_test_tick_delay_ns, ns); }
void rp_test_set_outer_slot(uint64_t addr) { atomic_store(&g_test_outer_slot, (uintptr_t)addr); }
