/*
 * sampler.h -- timers, the sampling-signal handler, per-thread slots, start/stop.
 *
 * SIGNAL-SAFETY CONTRACT (the handler, rp_handler in sampler.c)
 * -------------------------------------------------------------
 *  - no malloc, no locks, no Python C-API calls except the lock-free getters
 *    listed in compat/compat.h, no refcount changes;
 *  - errno is saved and restored;
 *  - it reads only: its own slot (found through si_value, validated by index,
 *    generation and owner), the interrupted thread's own PyThreadState and
 *    frame chain, process-wide atomics, and its own ring;
 *  - the frame walk is bounded (RP_WALK_LIMIT iterations) and every frame
 *    pointer is checked for plausibility before it is followed;
 *  - it writes one record into the thread's SPSC ring or counts a drop.
 *
 * START/STOP HANDSHAKE
 * --------------------
 * The handler increments g_active, then checks g_enabled (both seq_cst).
 * rp_stop() clears g_enabled and every slot's live flag, deletes the timers,
 * then waits -- without a time limit -- for g_active to reach zero: either a
 * handler saw enabled == 0 / live == 0, or stop saw it running and waits
 * (a store-buffering pattern: every access involved is seq_cst).  Rings are
 * never unmapped, so even a handler beyond every check touches mapped memory.  After rp_stop() returns no handler is running, no timer is armed and
 * the previous SIGPROF disposition is back (pending SIGPROFs are discarded by a
 * transient SIG_IGN first, so they cannot hit a restored SIG_DFL).  On the
 * real-time signal (free when chosen) the flush is followed by our handler
 * again, which returns at once while disabled: a signal still in flight in the
 * kernel when its timer was deleted meets that, never SIG_DFL.
 *
 * Everything except rp_handler runs with the GIL held, on the drain thread or
 * on the wall-mode tick thread (ticker.h), serialised by one control mutex
 * that is never taken inside the handler.  rp_start/rp_stop are serialised by
 * a second, outer mutex: stop joins the tick thread before it takes the
 * control mutex (a tick takes it).
 *
 * WALL MODE (sampler.c, "wall mode: the tick thread")
 * ---------------------------------------------------
 * The tick thread signals only the thread that holds the GIL (rt_tgsigqueueinfo,
 * SI_QUEUE from our own pid, the same index|generation value a timer carries);
 * a thread that does not hold it is read from outside (outside.h) and its
 * intervals are written by the tick thread into the tick ring, under the
 * control mutex: that ring's one producer is whoever holds the mutex.  The
 * handler tells a tick signal by SI_QUEUE + si_pid and takes the intervals
 * the tick thread added to its slot (one atomic exchange).
 */
#ifndef RINGPROF_SAMPLER_H
#define RINGPROF_SAMPLER_H

#include <stdint.h>
#include <stddef.h>

enum { RP_MODE_CPU = 0, RP_MODE_WALL = 1 };
enum { RP_TIMER_THREAD = 0, RP_TIMER_ITIMER = 1 };

#define RP_MAX_SLOTS 1024         /* threads sampled at once */
#define RP_DEFAULT_RING (1u << 18) /* 256 KiB per thread: ~500 records of depth 30 */
#define RP_MAX_DEPTH_LIMIT 2048

typedef struct rp_config {
    int mode;             /* RP_MODE_* */
    int timer_kind;       /* RP_TIMER_* requested; rp_start may fall back */
    uint64_t interval_ns; /* sampling period */
    uint32_t max_depth;   /* frames kept per sample (leaf side) */
    uint64_t ring_bytes;  /* per-thread ring capacity, power of two */
} rp_config;

typedef struct rp_stats {
    uint64_t samples;      /* records written */
    uint64_t dropped;      /* ring-full drops */
    uint64_t unattributed; /* signals that reached no registered thread */
    uint64_t handler_ns;   /* total time spent inside the handler */
    uint64_t record_ns;    /*   of which walking the stack and writing the record (not re-arming the timer) */
    uint64_t threads;      /* threads currently armed */
    uint64_t timer_errors; /* timer_create/settime failures */
    uint64_t ticks;           /* wall mode: tick-thread wake-ups (all sessions) */
    uint64_t tick_signals;    /*   signals it sent to threads running Python */
    uint64_t blocked_records; /*   records it wrote for blocked threads, without a signal */
} rp_stats;

/* All return 0 on success, -1 with a message in err. */
int rp_start(const rp_config *cfg, char *err, size_t errlen);
int rp_stop(char *err, size_t errlen);
int rp_is_enabled(void);
/* Compare the running interpreter's layout with what we were built for. */
int rp_verify_layout(char *err, size_t errlen);
/* Test hook: make rp_verify_layout check the interpreter's debug offsets with
 * the 8-byte field at byte `at` replaced by `value` (on=0 clears it).
 * -1 where the interpreter has no debug offsets (before 3.13). */
int rp_set_layout_override(int on, size_t at, uint64_t value);
int rp_timer_kind(void);
/* 1 if cpu mode samples on per-thread perf task-clock events (else POSIX CPU-time timers). */
int rp_uses_perf(void);
/* 1 if wall mode runs on the tick thread (blocked threads are never signalled). */
int rp_uses_wall_tick(void);
/* Wall mode: write the blocked intervals counted so far (a recording starts
 * or ends: records are stamped with their first interval, so a batch must not
 * straddle its start or end). */
void rp_flush_blocked(void);

/* Arm timers for Python threads of the main interpreter that have none and
 * retire slots of threads that are gone.  GIL held.  Returns threads armed. */
int rp_sync_threads(void);
/* Arm the calling thread now (called as a new thread starts, so short-lived
 * threads are not missed between sweeps).  Returns 1 if it was armed. */
int rp_register_current_thread(void);
/* Never sample this kernel thread id (the drain thread). */
void rp_exclude_tid(long tid);

/* Drain side.  rp_drain_prepare() snapshots every ring's head and returns the
 * bytes published so far; rp_drain() then copies exactly those records (not
 * later ones), so "everything written before the prepare" is a guarantee. */
uint64_t rp_drain_prepare(void);
uint64_t rp_drain(uint8_t *out, uint64_t cap);
/* How full the fullest ring was at the last rp_drain_prepare, in parts per
 * million of its capacity (the drain paces itself by it). */
uint32_t rp_drain_fill_ppm(void);
void rp_get_stats(rp_stats *st);
/* Per-thread label id, read by the handler on that thread. */
void rp_set_thread_label(uint64_t label);
uint64_t rp_get_thread_label(void);
/* Fault-free copies the walks have made since the process started (benchmarks, tests). */
uint64_t rp_walk_copies(void);
/* Is our handler still installed on the session's signal?  1 yes, 0 replaced. */
int rp_handler_installed(void);
/* Describe the current SIGPROF disposition if it belongs to someone else
 * (what the ITIMER_PROF fallback would refuse to take over). */
int rp_foreign_handler(char *desc, size_t desclen);
/* The real-time signal per-thread samples are delivered with (chosen once per
 * process, see choose_rt_signal in sampler.c), or -1 if none is free. */
int rp_signal_number(void);

/* Handlers running right now (0 whenever rp_stop has returned). */
int rp_active_handlers(void);
/* Test hook: every handler spins `ns` nanoseconds before recording (0 = off). */
void rp_test_set_handler_delay(uint64_t ns);
/* Test hook: other threads' CPU clocks read 0 ns, as the kernel reports for a
 * thread it has charged no run time yet (1 = on). */
void rp_test_set_thread_clock_zero(int on);
/* Test hook: each wall-mode tick sleeps `ns` nanoseconds after reading the
 * GIL's state, as a preempted tick thread would (0 = off). */
void rp_test_set_tick_delay(uint64_t ns);
/* Test hook: every walk takes `addr` as the enclosing eval loop's frame slot
 * (3.11/3.12's cframe window with a stale `previous`) and trusts no link
 * after the leaf (0 = off). */
void rp_test_set_outer_slot(uint64_t addr);

#endif /* RINGPROF_SAMPLER_H */
