/*
 * mix64.h -- the 64-bit integer hash the drain's and the exporter's hash
 * tables share (splitmix64's finalizer: every input bit moves every output
 * bit, so linear probing on the low bits stays short for pointers and ids).
 *
 * SIGNAL-SAFETY CONTRACT
 * ----------------------
 * A pure function of its argument: no memory, no state.  Safe anywhere,
 * though only code off the signal path (stackcache.c, pprof.c) uses it.
 */
#ifndef RINGPROF_MIX64_H
#define RINGPROF_MIX64_H

#include <stdint.h>

static inline uint64_t rp_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

#endif
