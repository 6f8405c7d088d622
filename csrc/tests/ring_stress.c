/*
 * ring_stress.c -- standalone stress test of the SPSC ring (csrc/ring.h) under
 * the exact concurrency it sees in production: the PRODUCER runs inside a
 * SIGPROF handler, fired by a per-thread POSIX timer (SIGEV_THREAD_ID) at a
 * high rate on the producer thread; the CONSUMER drains concurrently from
 * another thread, like the drain thread does.
 *
 * Every record carries a sequence number (in `tid`), a variable frame count
 * (so records straddle the end of the buffer and PAD records appear) and
 * frames derived from the sequence number.  The consumer checks that
 * sequence numbers only increase, that every record is intact, and at the end
 * that received + dropped == produced, i.e. nothing is lost silently and
 * nothing is torn.  Built with -fsanitize=thread by tools/tsan_ring.sh (TSan
 * then also checks the acquire/release protocol and flags signal-unsafe calls
 * in the handler), and plain -O2 for a fast high-rate run.
 *
 * usage: ring_stress [seconds=3] [ring_bytes=65536] [interval_us=20] [min_records=1000]
 * exit status: 0 ok, 1 integrity failure, 2 setup failure.
 */
#define _GNU_SOURCE
#include "../ring.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAMES 40

static rp_ring g_ring;
static _Atomic uint64_t g_produced;   /* handler invocations that attempted a record */
static _Atomic int g_stop;
static _Atomic int g_producer_done;
static _Atomic uint64_t g_handler_runs;
static uint64_t g_seq;                /* producer-private: only the handler touches it */

static uint32_t frames_for(uint64_t seq) { return (uint32_t)((seq * 7919u) % (MAX_FRAMES + 1)); }

static void on_sigprof(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    int saved = errno;
    atomic_fetch_add_explicit(&g_handler_runs, 1, memory_order_relaxed);
    uint64_t seq = g_seq++;
    uint32_t n = frames_for(seq);
    uint64_t pos;
    rp_record *rec = rp_ring_reserve(&g_ring, (uint32_t)(sizeof(rp_record) + n * sizeof(rp_frame)), &pos);
    atomic_fetch_add_explicit(&g_produced, 1, memory_order_relaxed);
    if (rec != NULL) {
        rec->magic = RP_REC_MAGIC;
        rec->nframes = (uint16_t)n;
        rec->flags = 0;
        rec->depth = n;
        rec->tid = seq;
        rec->time_ns = seq ^ 0x5a5a5a5a5a5a5a5aull;
        rec->weight = 1;
        rec->cpu_ns = 0;
        rec->label = ~seq;
        rp_frame *fr = (rp_frame *)(rec + 1);
        for (uint32_t i = 0; i < n; i++) {
            fr[i].code = seq * 1000003u + i;
            fr[i].instr = ~(seq + i);
        }
        rec->len = (uint32_t)(sizeof(rp_record) + n * sizeof(rp_frame));
        rp_ring_commit(&g_ring, pos, rec);
    }
    errno = saved;
}

static void *producer(void *arg)
{
    long interval_us = *(long *)arg;
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
#ifdef sigev_notify_thread_id
    sev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
#else
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
#endif
    timer_t timer;
    if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) {
        perror("timer_create");
        exit(2);
    }
    struct itimerspec its = {{0, interval_us * 1000}, {0, interval_us * 1000}};
    timer_settime(timer, 0, &its, NULL);
    /* Busy, but with regular libc calls: TSan delivers signals at interceptors. */
    volatile uint64_t x = 0;
    while (!atomic_load(&g_stop)) {
        for (int i = 0; i < 1000; i++) {
            x += (uint64_t)i;
        }
        sched_yield();
    }
    timer_delete(timer);
    /* Let a signal that was already queued run now, then stop producing. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    atomic_store(&g_producer_done, 1);
    return NULL;
}

static uint8_t g_buf[1 << 20];

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    uint64_t ring_bytes = argc > 2 ? strtoull(argv[2], NULL, 0) : 65536;
    long interval_us = argc > 3 ? atol(argv[3]) : 20;
    uint64_t min_records = argc > 4 ? strtoull(argv[4], NULL, 0) : 1000;
    if (rp_ring_init(&g_ring, ring_bytes) != 0) {
        perror("rp_ring_init");
        return 2;
    }
    /* Only the producer thread may take SIGPROF: block it here, so that the
     * consumer (created with this mask) never runs the handler. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPROF);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigprof;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, NULL);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t prod;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* The producer unblocks SIGPROF for itself. */
    sigset_t old;
    pthread_sigmask(SIG_UNBLOCK, &set, &old);
    pthread_create(&prod, &attr, producer, &interval_us);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t received = 0, next_min = 0, bytes = 0, pads_or_wraps = 0, last_tail = 0;
    int failures = 0;
    for (;;) {
        int done = atomic_load(&g_producer_done);
        uint64_t n = rp_ring_copy_out(&g_ring, g_buf, sizeof(g_buf), UINT64_MAX);
        uint64_t tail = atomic_load_explicit(&g_ring.tail, memory_order_relaxed);
        if ((tail & ~(ring_bytes - 1)) != (last_tail & ~(ring_bytes - 1))) {
            pads_or_wraps++;
        }
        last_tail = tail;
        bytes += n;
        for (uint64_t off = 0; off < n;) {
            const rp_record *rec = (const rp_record *)(g_buf + off);
            uint64_t seq = rec->tid;
            uint32_t nf = frames_for(seq);
            int bad = rec->magic != RP_REC_MAGIC || rec->len != sizeof(rp_record) + nf * sizeof(rp_frame) ||
                      rec->nframes != nf || rec->depth != nf || rec->label != ~seq ||
                      rec->time_ns != (seq ^ 0x5a5a5a5a5a5a5a5aull) || seq < next_min;
            const rp_frame *fr = (const rp_frame *)(rec + 1);
            for (uint32_t i = 0; !bad && i < nf; i++) {
                bad = fr[i].code != seq * 1000003u + i || fr[i].instr != ~(seq + i);
            }
            if (bad) {
                if (failures++ < 5) {
                    fprintf(stderr, "ring_stress: corrupt or out-of-order record at seq %llu (expected >= %llu)\n",
                            (unsigned long long)seq, (unsigned long long)next_min);
                }
                break;
            }
            next_min = seq + 1;
            received++;
            off += rec->len;
        }
        if (done && rp_ring_pending(&g_ring) == 0) {
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (el >= seconds) {
            atomic_store(&g_stop, 1);
        }
        if (el >= seconds + 30) {
            fprintf(stderr, "ring_stress: producer did not stop\n");
            return 1;
        }
        if (n == 0 || (received & 3) == 0) {
            /* Vary the consumer's pace (so the ring also fills up) and leave
             * the CPU to the producer when there is nothing to read. */
            struct timespec nap = {0, n == 0 ? 200000 : 20000};
            nanosleep(&nap, NULL);
        }
    }
    pthread_join(prod, NULL);
    uint64_t produced = atomic_load(&g_produced);
    uint64_t dropped = rp_ring_dropped(&g_ring);
    printf("ring_stress: %.1fs, ring %llu B, timer %ld us: produced %llu, received %llu, dropped %llu, "
           "%llu bytes, %llu wraps, handler runs %llu\n",
           seconds, (unsigned long long)ring_bytes, interval_us, (unsigned long long)produced,
           (unsigned long long)received, (unsigned long long)dropped, (unsigned long long)bytes,
           (unsigned long long)pads_or_wraps, (unsigned long long)atomic_load(&g_handler_runs));
    if (failures) {
        fprintf(stderr, "ring_stress: FAILED: %d corrupt/out-of-order records\n", failures);
        return 1;
    }
    if (received + dropped != produced) {
        fprintf(stderr, "ring_stress: FAILED: received %llu + dropped %llu != produced %llu\n",
                (unsigned long long)received, (unsigned long long)dropped, (unsigned long long)produced);
        return 1;
    }
    if (received < min_records || pads_or_wraps < 2) {
        fprintf(stderr, "ring_stress: FAILED: too little traffic to mean anything (%llu records, %llu wraps)\n",
                (unsigned long long)received, (unsigned long long)pads_or_wraps);
        return 1;
    }
    printf("ring_stress: OK\n");
    rp_ring_destroy(&g_ring);
    return 0;
}
