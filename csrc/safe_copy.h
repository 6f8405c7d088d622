/*
 * safe_copy.h -- copy our own memory without faulting.
 *
 * SIGNAL-SAFETY CONTRACT
 * ----------------------
 * rp_copy_own_memory is a raw process_vm_readv system call on our own pid: no
 * libc state, no allocation, no lock.  An unmapped source gives EFAULT (-1)
 * instead of SIGSEGV, so it may be called from the signal handler and from the
 * tick thread on pointers that are not known to be mapped.
 */
#ifndef RINGPROF_SAFE_COPY_H
#define RINGPROF_SAFE_COPY_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

static inline int rp_copy_own_memory(pid_t pid, void *dst, const void *src, size_t len)
{
    struct iovec local = {dst, len};
    struct iovec remote = {(void *)src, len};
    return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

#endif /* RINGPROF_SAFE_COPY_H */
