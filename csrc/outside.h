/*
 * outside.h -- read another thread's Python stack from outside it.
 *
 * SIGNAL-SAFETY CONTRACT
 * ----------------------
 * Not called from a signal handler: only from the wall-mode tick thread (no
 * GIL, no Python API).  It never dereferences a pointer of the other thread in
 * place: every byte (its thread state, the current-frame slot, the newest
 * datastack chunk, each frame outside it) comes through a fault-free copy
 * (safe_copy.h), so whatever that thread does meanwhile -- run, exit, free its
 * thread state -- this cannot fault.  It only yields raw (code, instruction)
 * pointers, never dereferenced; the caller decides whether the copy is
 * consistent (a thread whose CPU clock did not move across the read executed
 * nothing, so its chain did not change and its frames kept their code alive).
 */
#ifndef RINGPROF_OUTSIDE_H
#define RINGPROF_OUTSIDE_H

#include <stdint.h>
#include <sys/types.h>

#include "ring.h"


/* Read the frames of thread state `ts` (leaf first) into out[0..max_depth).
 * Returns the number of Python frames stored, or -1 if the thread state or its
 * current frame could not be read.  *flags gets RP_F_TRUNCATED (deeper than
 * max_depth) or RP_F_BAD_FRAME (an unreadable or implausible frame ended it). */
int rp_read_stack_outside(pid_t pid, const void *ts, rp_frame *out, uint32_t max_depth, uint16_t *flags);

#endif /* RINGPROF_OUTSIDE_H */
