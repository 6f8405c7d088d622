/*
 * codes.h -- code-object lifetime and validation for the drain (GIL held;
 * nothing here is ever called from the signal handler).
 *
 * The problem: a sample records a raw PyCodeObject* that the drain resolves up
 * to ~100 ms later.  If the code object died in between and its memory was
 * reused (by another code object, say), the sample would resolve to the wrong
 * function or to garbage.
 *
 * The fix: while sampling is active, every code-object death is DEFERRED.  The
 * dying object is resurrected (3.12+: a PyCode watcher takes a reference on
 * PY_CODE_EVENT_DESTROY; 3.11: a wrapper around PyCode_Type.tp_dealloc sets the
 * refcount back to 1) and parked with a sequence number.  A frame holds a strong
 * reference to its code, so every sample naming a code object was written
 * before that object's death.  The drain takes rp_codes_mark() BEFORE copying
 * the rings, copies every record, resolves, then calls rp_codes_release(mark):
 * objects that died before the mark are released for real.  Hence a code
 * pointer in an undrained sample always points at the code object it named.
 *
 * rp_code_check() guards against torn frames: it reads ob_type through
 * process_vm_readv (or a pipe write), which fails with EFAULT instead of
 * crashing on an unmapped address.
 */
#ifndef RINGPROF_CODES_H
#define RINGPROF_CODES_H

#include <stdint.h>

int rp_codes_install(void);             /* once; 0 ok, -1 with a Python error set */
void rp_codes_set_active(int active);   /* defer deaths while active */
uint64_t rp_codes_mark(void);           /* deaths deferred so far */
void rp_codes_release(uint64_t upto);   /* release deaths with sequence < upto */
uint64_t rp_codes_parked(void);         /* currently parked objects */
int rp_code_check(uint64_t ptr);        /* 1 if ptr is a live code object */
/* Code-unit index of instr in code (-1: out of range or incomplete frame). */
long rp_code_lasti(void *code, uint64_t instr);

#endif
