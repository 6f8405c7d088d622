/*
 * outside.c -- the fault-free outside read of a thread's Python stack (see
 * outside.h).  Cost: one copy of the thread state, one of the current-frame
 * slot, one of the newest datastack chunk's live part (where nearly every
 * frame of an ordinary stack is), and one per frame elsewhere (generator and
 * coroutine frames, older chunks); at most max_depth Python frames and
 * 2*max_depth+64 frames in all are visited.
 */
#define _GNU_SOURCE
#include "compat/compat.h" /* must come first: defines Py_BUILD_CORE_MODULE */

#include "outside.h"
#include "safe_copy.h"

#include <string.h>

/* The tick thread is the only caller: its scratch space is static. */
static _Alignas(16) unsigned char g_chunk[1 << 16];
static _Alignas(16) unsigned char g_tstate[sizeof(PyThreadState)];

int rp_read_stack_outside(pid_t pid, const void *ts, rp_frame *out, uint32_t max_depth, uint16_t *flags)
{
    *flags = 0;
    if (!rpc_ptr_ok(ts, 8) || rp_copy_own_memory(pid, g_tstate, ts, sizeof(g_tstate)) != 0) {
        return -1;
    }
    const PyThreadState *copy = (const PyThreadState *)(const void *)g_tstate;
    const void *slot = rpc_current_frame_slot(copy, (const PyThreadState *)ts);
    const void *f = NULL;
    if (slot == NULL || rp_copy_own_memory(pid, &f, slot, sizeof(f)) != 0) {
        return -1;
    }
    /* The live part of the newest chunk, in one copy. */
    uintptr_t lo = 0, hi = 0;
    const rpc_chunk *chunk = copy->datastack_chunk;
    if (rpc_ptr_ok(chunk, 8)) {
        lo = (uintptr_t)chunk + offsetof(rpc_chunk, data);
        hi = (uintptr_t)copy->datastack_top;
        if (hi <= lo || hi - lo > sizeof(g_chunk) || rp_copy_own_memory(pid, g_chunk, (const void *)lo, hi - lo) != 0) {
            lo = hi = 0;
        }
    }
    const void *end = rpc_chain_end((PyThreadState *)(void *)g_tstate);
    uint32_t n = 0, limit = 2 * max_depth + 64;
    _Alignas(16) unsigned char frame[RPC_FRAME_HEADER_SIZE];
    for (uint32_t iter = 0; f != NULL && f != end; iter++) {
        if (iter >= limit) {
            *flags |= RP_F_TRUNCATED;
            break;
        }
        if (!rpc_ptr_ok(f, 8)) {
            *flags |= RP_F_BAD_FRAME;
            break;
        }
        uintptr_t a = (uintptr_t)f;
        const void *view = frame;
        if (a >= lo && a + RPC_FRAME_HEADER_SIZE <= hi) {
            view = g_chunk + (a - lo);
        } else if (rp_copy_own_memory(pid, frame, f, sizeof(frame)) != 0) {
            *flags |= RP_F_BAD_FRAME;
            break;
        }
        const void *prev = rpc_frame_previous(view);
        int kind = rpc_frame_kind(view);
        if (kind == RPC_FRAME_BAD) {
            *flags |= RP_F_BAD_FRAME;
            break;
        }
        if (kind == RPC_FRAME_PYTHON) {
            uint64_t code = rpc_frame_code(view);
            if (!rpc_ptr_ok((const void *)(uintptr_t)code, 8)) {
                *flags |= RP_F_BAD_FRAME;
                break;
            }
            if (n == max_depth) {
                *flags |= RP_F_TRUNCATED; /* deeper than max_depth: not counted */
                break;
            }
            out[n].code = code;
            out[n].instr = rpc_frame_instr(view);
            n++;
        }
        f = prev;
    }
    return (int)n;
}
