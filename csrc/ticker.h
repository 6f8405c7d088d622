/*
 * ticker.h -- a ringprof-owned thread that wakes at random instants.
 *
 * SIGNAL-SAFETY CONTRACT
 * ----------------------
 * Nothing here runs in a signal handler.  The tick thread is a plain pthread
 * created with every signal blocked (it never takes a sampling signal, and a
 * process-directed signal is never delivered to it), holds no Python state and
 * never calls the Python C-API; its callback runs without the GIL.
 * rp_ticker_start/stop are called by the sampler's start/stop path;
 * rp_ticker_forget_in_child only from a pthread_atfork child handler
 * (async-signal-safe work only: it does not exist in the child).
 *
 * WHY RANDOM INSTANTS
 * -------------------
 * Ticks are spaced uniformly in [interval/2, 3*interval/2) on CLOCK_MONOTONIC:
 * a high-resolution clock (not quantised to the kernel tick) and random, so no
 * periodic workload can phase-lock with the samples they trigger.  The callback
 * gets the wall time since the previous tick, so a tick that comes late (a
 * loaded machine) loses no time.
 */
#ifndef RINGPROF_TICKER_H
#define RINGPROF_TICKER_H

#include <stddef.h>
#include <stdint.h>

typedef void (*rp_tick_fn)(uint64_t now_ns, uint64_t elapsed_ns);

/* Start the tick thread calling fn every ~interval_ns.  0, or -1 with err. */
int rp_ticker_start(uint64_t interval_ns, rp_tick_fn fn, char *err, size_t errlen);
/* Stop it and wait until its last tick has returned (not from inside fn).
 * Returns the wall time since that last tick (0 if it was not running): the
 * caller accounts for it, so stopping loses no time. */
uint64_t rp_ticker_stop(void);
/* 1 while a tick thread runs. */
int rp_ticker_running(void);
/* Ticks so far (all sessions). */
uint64_t rp_ticker_ticks(void);
/* Fork child: the thread does not exist there; forget it. */
void rp_ticker_forget_in_child(void);

#endif /* RINGPROF_TICKER_H */
