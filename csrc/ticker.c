/*
 * ticker.c -- the random-instant tick thread (see ticker.h).
 */
#define _GNU_SOURCE
#include "ticker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_t g_thread;
static int g_running;                 /* owned by start/stop (serialised by the caller) */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv;           /* on CLOCK_MONOTONIC; initialised at the first start */
static int g_cv_ready;
static int g_stop;                    /* under g_mu */
static uint64_t g_interval;
static rp_tick_fn g_fn;
static uint64_t g_rng;                /* the tick thread only */
static _Atomic uint64_t g_ticks;
static uint64_t g_last_tick;          /* the tick thread's, read after joining it */

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next_random(void)
{
    /* xorshift64* */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545F4914F6CDD1Dull;
}

static uint64_t random_interval(void) { return g_interval / 2 + (next_random() >> 11) % g_interval; }

static void *tick_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "ringprof-tick"); /* for top -H, /proc/PID/task */
    uint64_t prev = monotonic_ns();
    g_last_tick = prev;
    uint64_t next = prev + random_interval();
    pthread_mutex_lock(&g_mu);
    while (!g_stop) {
        struct timespec ts = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
        int rc = pthread_cond_timedwait(&g_cv, &g_mu, &ts);
        if (g_stop) {
            break;
        }
        if (rc != ETIMEDOUT) {
            continue; /* spurious wake-up */
        }
        pthread_mutex_unlock(&g_mu);
        uint64_t now = monotonic_ns();
        atomic_fetch_add_explicit(&g_ticks, 1, memory_order_relaxed);
        g_fn(now, now - prev);
        prev = g_last_tick = now;
        next += random_interval();
        if (next <= now) {
            next = now + random_interval(); /* fell behind (a long tick): no burst */
        }
        pthread_mutex_lock(&g_mu);
    }
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

int rp_ticker_start(uint64_t interval_ns, rp_tick_fn fn, char *err, size_t errlen)
{
    if (g_running) {
        snprintf(err, errlen, "the tick thread is already running");
        return -1;
    }
    if (!g_cv_ready) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&g_cv, &ca);
        pthread_condattr_destroy(&ca);
        g_cv_ready = 1;
    }
    g_interval = interval_ns ? interval_ns : 1;
    g_fn = fn;
    g_rng = monotonic_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
    g_stop = 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited by the new thread */
    int rc = pthread_create(&g_thread, NULL, tick_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the tick thread: %s", strerror(rc));
        return -1;
    }
    g_running = 1;
    return 0;
}

uint64_t rp_ticker_stop(void)
{
    if (!g_running) {
        return 0;
    }
    pthread_mutex_lock(&g_mu);
    g_stop = 1;
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
    pthread_join(g_thread, NULL); /* orders its last write of g_last_tick before this read */
    g_running = 0;
    uint64_t now = monotonic_ns();
    return now > g_last_tick ? now - g_last_tick : 0;
}

int rp_ticker_running(void) { return g_running; }

uint64_t rp_ticker_ticks(void) { return atomic_load_explicit(&g_ticks, memory_order_relaxed); }

void rp_ticker_forget_in_child(void)
{
    /* The lock and condition variable may have been held at the fork. */
    pthread_mutex_init(&g_mu, NULL);
    g_cv_ready = 0;
    g_running = 0;
}
