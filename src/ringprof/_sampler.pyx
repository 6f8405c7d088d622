# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The Cython boundary of the native sampler: start/stop, drain raw records,
and the few code-object primitives the resolver needs.

Nothing crosses this boundary but raw records, counters and code objects that
were validated before being turned into Python references.
"""

from cpython cimport array as carray
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

import array
import threading

cdef extern from "Python.h":
    int PyCode_Addr2Line(void *co, int byte_offset)  # PyCodeObject *: a void * converts implicitly
    ctypedef struct PyInterpreterState:
        pass
    PyInterpreterState *PyInterpreterState_Head()
    PyInterpreterState *PyInterpreterState_Main()
    PyInterpreterState *PyInterpreterState_Next(PyInterpreterState *interp)

cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    pthread_t pthread_self()
    int pthread_setname_np(pthread_t thread, const char *name)

cdef extern from "ring.h":
    ctypedef struct rp_record:
        uint32_t magic
        uint32_t len
        uint16_t nframes
        uint16_t flags
        uint32_t depth
        uint64_t tid
        uint64_t time_ns
        uint64_t weight
        uint64_t cpu_ns
        uint64_t label
    ctypedef struct rp_frame:
        uint64_t code
        uint64_t instr
    ctypedef struct rp_ring:
        uint64_t cap
        uint8_t *buf
    int rp_ring_init(rp_ring *r, uint64_t cap_bytes)
    void rp_ring_destroy(rp_ring *r)
    rp_record *rp_ring_reserve(rp_ring *r, uint32_t max_len, uint64_t *pos) nogil
    void rp_ring_commit(rp_ring *r, uint64_t pos, const rp_record *rec) nogil
    uint64_t rp_ring_pending(rp_ring *r) nogil
    uint64_t rp_ring_copy_out(rp_ring *r, uint8_t *out, uint64_t cap, uint64_t upto) nogil
    uint64_t rp_ring_dropped(rp_ring *r) nogil
    uint32_t RP_REC_MAGIC

cdef extern from "sampler.h":
    ctypedef struct rp_config:
        int mode
        int timer_kind
        uint64_t interval_ns
        uint32_t max_depth
        uint64_t ring_bytes
    ctypedef struct rp_stats:
        uint64_t samples
        uint64_t dropped
        uint64_t unattributed
        uint64_t handler_ns
        uint64_t record_ns
        uint64_t threads
        uint64_t timer_errors
        uint64_t ticks
        uint64_t tick_signals
        uint64_t blocked_records
    int RP_MODE_CPU, RP_MODE_WALL, RP_TIMER_THREAD, RP_TIMER_ITIMER, RP_MAX_DEPTH_LIMIT
    int rp_start(const rp_config *cfg, char *err, size_t errlen)
    int rp_stop(char *err, size_t errlen)
    int rp_is_enabled()
    int rp_verify_layout(char *err, size_t errlen)
    int rp_set_layout_override(int on, size_t at, uint64_t value)
    int rp_timer_kind()
    int rp_uses_perf()
    int rp_uses_wall_tick()
    void rp_flush_blocked()
    int rp_sync_threads()
    int rp_register_current_thread()
    void rp_exclude_tid(long tid)
    uint64_t rp_drain_prepare() nogil
    uint64_t rp_drain(uint8_t *out, uint64_t cap) nogil
    uint32_t rp_drain_fill_ppm() nogil
    void rp_get_stats(rp_stats *st)
    void rp_set_thread_label(uint64_t label)
    uint64_t rp_get_thread_label()
    int rp_handler_installed()
    int rp_foreign_handler(char *desc, size_t desclen)
    uint64_t rp_walk_copies()
    int rp_active_handlers()
    int rp_signal_number()
    void rp_test_set_handler_delay(uint64_t ns)
    void rp_test_set_thread_clock_zero(int on)
    void rp_test_set_tick_delay(uint64_t ns)
    void rp_test_set_outer_slot(uint64_t addr)

cdef extern from "codes.h":
    ctypedef struct rp_dead_code:
        uint64_t ptr
        uint64_t death_ns
        uint64_t seq
        void *qualname
        void *filename
        void *linetable
        int firstlineno
    int rp_codes_install() except -1
    void rp_codes_set_active(int active)
    uint64_t rp_codes_mark()
    void rp_codes_release(uint64_t upto)
    uint64_t rp_codes_parked()
    uint64_t rp_codes_first_seq()
    int rp_codes_register(void *code)
    int rp_codes_known(uint64_t ptr)
    int rp_codes_static(uint64_t ptr)
    uint64_t rp_codes_registered()
    int RP_QUIET_DEATHS_MAX
    int rp_codes_take_quiet(uint64_t *out, size_t cap, size_t *n)
    int rp_codes_quiet_pending()
    const rp_dead_code *rp_codes_dead(uint64_t seq)
    int rp_dead_code_line(const rp_dead_code *d, uint64_t instr)
    long rp_code_lasti(void *code, uint64_t instr)
    uint64_t rp_code_instr_address(void *code, long lasti)
    int rp_linetable_line(const unsigned char *table, size_t len, int firstlineno, long lasti)

MAX_DEPTH_LIMIT = RP_MAX_DEPTH_LIMIT
RECORD_HEADER_BYTES = sizeof(rp_record)
FRAME_BYTES = sizeof(rp_frame)

class SamplerError(RuntimeError):
    """The native sampler refused to start or stop (the message says why)."""


def _layout_error():
    cdef char err[512]
    err[0] = 0
    if rp_verify_layout(err, sizeof(err)) != 0:
        return err.decode("utf-8", "replace")
    return None


#: Checked once at import: None, or why this interpreter's frame layout is not
#: the one ringprof was compiled for (start() then refuses with this message).
LAYOUT_ERROR = _layout_error()


def _test_layout_override(bint on, size_t at=0, uint64_t value=0):
    """Test hook: from now on, check the running interpreter's debug offsets
    with the 8-byte field at byte ``at`` replaced by ``value`` (``on=False``
    restores the real check).  Returns what the check now says (None: ok)."""
    if rp_set_layout_override(on, at, value) != 0:
        raise SamplerError("this interpreter publishes no debug offsets (CPython < 3.13)")
    return _layout_error()


def start(str mode, str timer, double interval, int max_depth, uint64_t ring_bytes):
    """Install the handler and arm timers for every Python thread."""
    cdef rp_config cfg
    cdef char err[512]
    err[0] = 0
    cfg.mode = RP_MODE_WALL if mode == "wall" else RP_MODE_CPU
    cfg.timer_kind = RP_TIMER_ITIMER if timer == "itimer" else RP_TIMER_THREAD
    cfg.interval_ns = <uint64_t>(interval * 1e9)
    cfg.max_depth = max_depth
    cfg.ring_bytes = ring_bytes
    if LAYOUT_ERROR is not None:
        raise SamplerError(LAYOUT_ERROR)
    rp_codes_install()
    rp_codes_set_active(1)
    if rp_start(&cfg, err, sizeof(err)) != 0:
        # Deferral must not outlive a refused start: nothing will ever drain.
        rp_codes_set_active(0)
        rp_codes_release(rp_codes_mark())
        raise SamplerError(err.decode("utf-8", "replace"))


def stop():
    """Disarm every timer, wait for running handlers, restore SIGPROF."""
    cdef char err[512]
    err[0] = 0
    if rp_stop(err, sizeof(err)) != 0:
        raise SamplerError(err.decode("utf-8", "replace"))


def is_enabled():
    return bool(rp_is_enabled())


def timer_kind():
    return "itimer" if rp_timer_kind() == RP_TIMER_ITIMER else "thread"


def uses_perf():
    """True when cpu mode samples on per-thread perf task-clock events."""
    return bool(rp_uses_perf())


def uses_wall_tick():
    """True when wall mode runs on the tick thread (blocked threads are never signalled)."""
    return bool(rp_uses_wall_tick())


def flush_blocked():
    """Wall mode: write the blocked time counted so far (a recording starts or ends)."""
    rp_flush_blocked()


def sync_threads():
    """Arm timers for new Python threads, retire exited ones (GIL held)."""
    return rp_sync_threads()


def register_current_thread():
    """Arm the calling thread right away (new threads call this as they start)."""
    return rp_register_current_thread()


def exclude_current_thread():
    """Never sample the calling thread (used by the drain thread)."""
    rp_exclude_tid(<long>threading.get_native_id())


def handler_installed():
    return bool(rp_handler_installed())


def foreign_handler():
    """Describe a SIGPROF handler that is not ours, or return None."""
    cdef char desc[512]
    if rp_foreign_handler(desc, sizeof(desc)):
        return desc.decode("utf-8", "replace")
    return None


def signal_number():
    """The real-time signal per-thread samples are delivered with (SIGPROF
    is used only by the ITIMER_PROF fallback).  Chosen once per process:
    RINGPROF_SIGNAL, else the highest free one in SIGRTMAX-1..SIGRTMIN."""
    cdef int sig = rp_signal_number()
    if sig < 0:
        raise SamplerError("no free real-time signal; set RINGPROF_SIGNAL")
    return sig


def active_handlers():
    """Signal handlers running right now (always 0 once stop() has returned)."""
    return rp_active_handlers()


def _test_handler_delay(uint64_t ns):
    """Test hook: every handler spins ``ns`` nanoseconds before recording (0: off)."""
    rp_test_set_handler_delay(ns)


def _test_tick_delay(uint64_t ns):
    """Test hook: each wall-mode tick sleeps ``ns`` nanoseconds after reading
    the GIL's state (0: off)."""
    rp_test_set_tick_delay(ns)


def _test_outer_slot(uint64_t addr):
    """Test hook: every walk reads ``addr`` as the enclosing eval loop's frame
    slot and trusts no link after the leaf, as in 3.11/3.12's cframe window
    with a stale ``previous`` (0: off)."""
    rp_test_set_outer_slot(addr)


def _test_thread_clock_zero(bint on):
    """Test hook: other threads' CPU clocks read 0 ns (a thread the kernel has
    charged no run time yet)."""
    rp_test_set_thread_clock_zero(on)


def set_native_thread_name(str name):
    """Name the calling thread for the OS (``top -H``, ``/proc/PID/task/*/comm``):
    at most 15 bytes are kept."""
    cdef bytes raw = name.encode("utf-8", "replace")[:15]
    pthread_setname_np(pthread_self(), raw)


def set_thread_label(uint64_t label):
    rp_set_thread_label(label)


def get_thread_label():
    return rp_get_thread_label()


def stats():
    cdef rp_stats st
    rp_get_stats(&st)
    return {
        "samples": st.samples,
        "dropped": st.dropped,
        "unattributed": st.unattributed,
        "handler_ns": st.handler_ns,
        "record_ns": st.record_ns,
        "threads": st.threads,
        "timer_errors": st.timer_errors,
        "ticks": st.ticks,
        "tick_signals": st.tick_signals,
        "blocked_records": st.blocked_records,
        "parked_codes": rp_codes_parked(),
        "registered_codes": rp_codes_registered(),
    }


def walk_copies():
    """Fault-free copies (syscalls) the handler's walks have made so far."""
    return rp_walk_copies()


# Below this many bytes of records, copying the rings out and resolving them
# keeps the GIL (a few tens of us).  Handing the GIL away costs more than that
# when a request thread is running Python: it takes the GIL at once, and the
# drain waits for the switch interval (5 ms) to get it back, then forces a
# switch, stalling the request again.  One stall per drain pass, not four.
cdef enum:
    NOGIL_MIN_BYTES = 256 * 1024


def drain():
    """Copy out every record written so far.

    Returns ``(buffer, mark)``: the records, and the code-death mark to pass to
    :func:`release_codes` once the buffer has been resolved.
    """
    cdef uint64_t mark = rp_codes_mark()
    cdef uint64_t n, got
    n = rp_drain_prepare()  # a pass over the slots: too short to hand the GIL away for
    buf = bytearray(n)
    cdef uint8_t[::1] view = buf if n else None
    got = 0
    if n >= NOGIL_MIN_BYTES:
        with nogil:
            got = rp_drain(&view[0], n)
    elif n:
        got = rp_drain(&view[0], n)
    return bytes(buf[:got]) if got != n else bytes(buf), mark


def drain_fill():
    """How full the fullest ring was at the last drain, as a fraction of its size."""
    return rp_drain_fill_ppm() / 1e6


def release_codes(uint64_t mark):
    rp_codes_release(mark)


def set_codes_active(bint active):
    rp_codes_set_active(active)


def take_quiet_deaths():
    """Addresses of code objects that died while deferral was off, since the
    last call (the log is emptied); None when the log cannot tell (overflowed,
    or deaths went unlogged): then every address is suspect."""
    cdef uint64_t *buf
    cdef size_t n = 0, i
    if not rp_codes_quiet_pending():
        return []
    buf = <uint64_t *>PyMem_Malloc(RP_QUIET_DEATHS_MAX * sizeof(uint64_t))
    if buf == NULL:
        raise MemoryError()
    try:
        if rp_codes_take_quiet(buf, RP_QUIET_DEATHS_MAX, &n):
            return None
        return [buf[i] for i in range(n)]
    finally:
        PyMem_Free(buf)


def codes_mark():
    return rp_codes_mark()


def codes_first_seq():
    """Sequence number of the oldest dead-code snapshot still held (advances as they are released)."""
    return rp_codes_first_seq()


cdef carray.array _I64 = array.array("q")
cdef carray.array _U16 = array.array("H")
cdef carray.array _I32 = array.array("i")


cdef carray.array _column(carray.array template, Py_ssize_t n):
    return carray.clone(template, n, zero=False)


def parse(const uint8_t[::1] buf, dict index, Py_ssize_t next_id=-1):
    """Split a drained buffer into per-sample columns.

    ``index`` maps a raw stack key (frame bytes + synthetic flags) to a raw id;
    keys seen for the first time are added and returned in ``new`` as
    ``(raw_id, key)`` so the caller resolves each unique raw stack once.  New
    ids count up from ``next_id`` (default: ``len(index)``; a caller that
    removes keys from ``index`` must pass its own counter).
    """
    cdef Py_ssize_t total = buf.shape[0] if buf is not None else 0
    cdef Py_ssize_t off = 0, count = 0, i = 0
    cdef const rp_record *rec
    while off + <Py_ssize_t>sizeof(rp_record) <= total:
        rec = <const rp_record *>&buf[off]
        if rec.len < sizeof(rp_record) or off + rec.len > total:
            break
        count += 1
        off += rec.len
    # Typed stdlib arrays, not numpy: the recording path never imports numpy
    # (it costs tens of milliseconds and starts BLAS threads in the host).
    raw = _column(_I64, count)
    tid = _column(_I64, count)
    tns = _column(_I64, count)
    weight = _column(_I64, count)
    cpu = _column(_I64, count)
    flags = _column(_U16, count)
    label = _column(_I64, count)
    depth = _column(_I32, count)
    cdef long long[::1] v_raw = raw, v_tid = tid, v_tns = tns, v_w = weight, v_cpu = cpu, v_label = label
    cdef unsigned short[::1] v_flags = flags
    cdef int[::1] v_depth = depth
    new = []
    cdef bytes key
    off = 0
    for i in range(count):
        rec = <const rp_record *>&buf[off]
        # The key: raw frames plus the flags that change how a stack reads.
        key = PyBytes_FromStringAndSize(NULL, rec.nframes * sizeof(rp_frame) + 1)
        (<char *>key)[0] = <char>(rec.flags & 0x3D)  # everything but HOLDS_GIL
        memcpy(<char *>key + 1, <const char *>rec + sizeof(rp_record), rec.nframes * sizeof(rp_frame))
        rid = index.get(key)
        if rid is None:
            if next_id < 0:
                rid = len(index)
            else:
                rid = next_id
                next_id += 1
            index[key] = rid
            new.append((rid, key))
        v_raw[i] = rid
        v_tid[i] = rec.tid
        v_tns[i] = rec.time_ns
        v_w[i] = rec.weight
        v_cpu[i] = rec.cpu_ns
        v_flags[i] = rec.flags
        v_label[i] = rec.label
        v_depth[i] = rec.depth
        off += rec.len
    return raw, tid, tns, weight, cpu, flags, label, depth, new


cdef extern from "stackcache.h":
    ctypedef struct rp_fmap:
        size_t len
    ctypedef struct rp_smap:
        size_t len
    ctypedef struct rp_columns:
        int32_t *stack
        int64_t *tid
        int64_t *time_ns
        int64_t *weight
        int64_t *cpu_ns
        uint16_t *flags
        int64_t *label
        int32_t *depth
        int64_t *offset
    int RP_FRAME_SKIP
    void rp_fmap_init(rp_fmap *m)
    void rp_fmap_destroy(rp_fmap *m)
    void rp_fmap_clear(rp_fmap *m)
    int rp_fmap_get(const rp_fmap *m, uint64_t code, uint64_t instr, int32_t *fid)
    int rp_fmap_put(rp_fmap *m, uint64_t code, uint64_t instr, int32_t fid)
    long rp_fmap_forget_codes(rp_fmap *m, const uint64_t *codes, size_t n) nogil
    void rp_smap_init(rp_smap *m)
    void rp_smap_destroy(rp_smap *m)
    void rp_smap_clear(rp_smap *m)
    int rp_smap_get(const rp_smap *m, uint16_t flags, const int32_t *fids, uint32_t n, int32_t *sid)
    int rp_smap_put(rp_smap *m, uint16_t flags, const int32_t *fids, uint32_t n, int32_t sid)
    void rp_smap_test_constant_hash(int on)
    ctypedef struct rp_code_lines:
        pass
    ctypedef struct rp_linemap:
        size_t n
    void rp_linemap_init(rp_linemap *m)
    void rp_linemap_destroy(rp_linemap *m)
    void rp_linemap_clear(rp_linemap *m)
    int rp_linemap_add_code(rp_linemap *m, uint64_t code, const rp_code_lines *lines)
    int rp_linemap_add_line(rp_linemap *m, uint64_t code, int line, int32_t fid)
    long rp_linemap_forget_codes(rp_linemap *m, const uint64_t *codes, size_t n) nogil
    int rp_linemap_line(const rp_linemap *m, uint64_t code, uint64_t instr, int *line)
    size_t rp_stackcache_count(const uint8_t *buf, size_t len) nogil
    long rp_stackcache_resolve(const uint8_t *buf, size_t count, rp_fmap *fm, const rp_smap *sm,
                               const rp_linemap *lm, const uint64_t *dead, size_t ndead,
                               rp_columns *cols) nogil

cdef extern from "codes.h":
    void rp_code_lines_of(void *code, rp_code_lines *out)


cdef carray.array _U64 = array.array("Q")
cdef carray.array _I32c = array.array("i")


cdef class StackCache:
    """The drain's C resolution caches (``csrc/stackcache.h``): raw frame
    (code pointer, instruction) -> frame id, and (flags, frame ids) -> stack
    id.  :meth:`resolve` splits a drained buffer into columns without the GIL,
    resolving every sample whose stack is known; the others get stack id -1
    and are resolved in Python, which then teaches the cache with
    :meth:`learn_frame` and :meth:`learn_stack`.

    A third map, the line map, knows the location tables of live code objects
    (:meth:`learn_code`) and the frame id of their lines (:meth:`learn_line`),
    so that a new instruction of a known code object resolves in C too.

    Holds no Python reference to anything a pointer names: it maps integers,
    and keeps the location tables (bytes) the line map reads, not their code
    objects."""
    cdef rp_fmap fmap
    cdef rp_smap smap
    cdef rp_linemap lmap
    cdef dict tables  # code pointer -> its location table (bytes), read by lmap

    def __cinit__(self):
        rp_fmap_init(&self.fmap)
        rp_smap_init(&self.smap)
        rp_linemap_init(&self.lmap)
        self.tables = {}

    def __dealloc__(self):
        rp_fmap_destroy(&self.fmap)
        rp_smap_destroy(&self.smap)
        rp_linemap_destroy(&self.lmap)

    @property
    def codes(self):
        """Code objects taught to the line map since it was last cleared, forgotten ones
        included (their entries stay until then): what bounds its memory."""
        return self.lmap.n

    def learn_code(self, uint64_t ptr, object code):
        """``code`` (alive, at address ``ptr``): find the lines of its instructions in C
        from now on, until :meth:`forget_codes` names ``ptr``."""
        if ptr in self.tables:
            return
        if <uint64_t><size_t><void *>code != ptr:
            raise ValueError("code object is not at that address")
        cdef rp_code_lines lines
        rp_code_lines_of(<void *>code, &lines)
        if rp_linemap_add_code(&self.lmap, ptr, &lines) != 0:
            raise MemoryError()
        self.tables[ptr] = code.co_linetable  # the table lmap reads stays alive

    def learn_line(self, uint64_t ptr, int line, int32_t fid):
        """Line ``line`` of the code object at ``ptr`` is frame ``fid``."""
        if fid < 0:
            raise ValueError(f"bad frame id {fid}")
        if rp_linemap_add_line(&self.lmap, ptr, line, fid) != 0:
            raise MemoryError()

    def code_line(self, uint64_t ptr, uint64_t instr):
        """The line the line map finds for a raw frame, or None (tests)."""
        cdef int line
        return line if rp_linemap_line(&self.lmap, ptr, instr, &line) else None

    @property
    def frames(self):
        """Raw frames known."""
        return self.fmap.len

    @property
    def stacks(self):
        """Stacks known."""
        return self.smap.len

    def clear(self):
        rp_fmap_clear(&self.fmap)
        rp_smap_clear(&self.smap)
        rp_linemap_clear(&self.lmap)
        self.tables.clear()

    def learn_frame(self, uint64_t code, uint64_t instr, int32_t fid):
        """Raw frame (code, instr) resolves to frame ``fid`` (-1: skipped, an incomplete frame)."""
        if fid < RP_FRAME_SKIP:
            raise ValueError(f"bad frame id {fid}")
        if rp_fmap_put(&self.fmap, code, instr, fid) != 0:
            raise MemoryError()

    def lookup_frame(self, uint64_t code, uint64_t instr):
        """The frame id of a raw frame, or None."""
        cdef int32_t fid
        return fid if rp_fmap_get(&self.fmap, code, instr, &fid) else None

    def lookup_frames(self, const uint8_t[::1] key):
        """The frame id of every raw frame of a raw stack key (see
        :func:`raw_key`), leaf first: -1 for a skipped frame, -2 unknown."""
        cdef Py_ssize_t n = (key.shape[0] - 1) // sizeof(rp_frame) if key.shape[0] > 1 else 0
        cdef carray.array out = carray.clone(_I32c, n, zero=False)
        # The key is a flags byte then the frames, so the frames are not
        # 8-byte aligned: copy each one out rather than read it in place.
        cdef const uint8_t *at = &key[1] if n else NULL
        cdef rp_frame fr
        cdef int32_t fid
        cdef Py_ssize_t i
        for i in range(n):
            memcpy(&fr, at + i * sizeof(rp_frame), sizeof(rp_frame))
            out.data.as_ints[i] = fid if rp_fmap_get(&self.fmap, fr.code, fr.instr, &fid) else -2
        return out

    def learn_stack(self, uint16_t flags, fids, int32_t sid):
        """Frame ids ``fids`` (leaf first, skipped frames left out) with ``flags`` are stack ``sid``."""
        cdef carray.array ids = array.array("i", fids)
        if rp_smap_put(&self.smap, flags & 0x3D, <const int32_t *>ids.data.as_ints, <uint32_t>len(ids), sid) != 0:
            raise MemoryError()

    def lookup_stack(self, uint16_t flags, fids):
        """The stack id of frame ids ``fids`` with ``flags``, or None."""
        cdef carray.array ids = array.array("i", fids)
        cdef int32_t sid
        return sid if rp_smap_get(&self.smap, flags & 0x3D, <const int32_t *>ids.data.as_ints, <uint32_t>len(ids), &sid) else None

    def forget_codes(self, codes):
        """Drop every raw frame of these code pointers (code objects died there)."""
        cdef carray.array ptrs = array.array("Q", sorted(set(codes)))
        cdef long gone
        cdef size_t n = len(ptrs)
        if not n:
            return 0
        cdef long lines_gone
        with nogil:
            gone = rp_fmap_forget_codes(&self.fmap, <const uint64_t *>ptrs.data.as_ulonglongs, n)
            lines_gone = rp_linemap_forget_codes(&self.lmap, <const uint64_t *>ptrs.data.as_ulonglongs, n)
        # Only now, with the line map no longer naming them, may the tables go.
        if lines_gone < 0:
            self.tables.clear()
        else:
            for ptr in ptrs:
                self.tables.pop(ptr, None)
        return max(gone, 0)

    def resolve(self, const uint8_t[::1] buf, dead=()):
        """Split a drained buffer into per-sample columns, without the GIL.

        Returns ``(stack, tid, time_ns, weight, cpu_ns, flags, label, depth,
        offset, unresolved)``: typed arrays; ``stack`` holds stack ids, -1 for
        a sample whose raw stack the cache cannot resolve (a raw frame not
        learnt, a code pointer in ``dead``, a stack not learnt); ``offset``
        is each record's byte offset (for :func:`raw_key`); ``unresolved``
        counts the -1 entries."""
        cdef size_t total = buf.shape[0] if buf is not None else 0
        cdef const uint8_t *data = &buf[0] if total else NULL
        cdef size_t count = 0
        if total >= NOGIL_MIN_BYTES:
            with nogil:
                count = rp_stackcache_count(data, total)
        elif total:
            count = rp_stackcache_count(data, total)
        cdef carray.array stack = carray.clone(_I32c, count, zero=False)
        cdef carray.array tid = carray.clone(_I64, count, zero=False)
        cdef carray.array tns = carray.clone(_I64, count, zero=False)
        cdef carray.array weight = carray.clone(_I64, count, zero=False)
        cdef carray.array cpu = carray.clone(_I64, count, zero=False)
        cdef carray.array flags = carray.clone(_U16, count, zero=False)
        cdef carray.array label = carray.clone(_I64, count, zero=False)
        cdef carray.array depth = carray.clone(_I32c, count, zero=False)
        cdef carray.array offset = carray.clone(_I64, count, zero=False)
        cdef carray.array dead_ptrs = array.array("Q", sorted(set(dead)))
        cdef rp_columns cols
        cdef long unresolved = 0
        cdef size_t ndead = len(dead_ptrs)
        cols.stack = <int32_t *>stack.data.as_ints
        cols.tid = <int64_t *>tid.data.as_longlongs
        cols.time_ns = <int64_t *>tns.data.as_longlongs
        cols.weight = <int64_t *>weight.data.as_longlongs
        cols.cpu_ns = <int64_t *>cpu.data.as_longlongs
        cols.flags = <uint16_t *>flags.data.as_ushorts
        cols.label = <int64_t *>label.data.as_longlongs
        cols.depth = <int32_t *>depth.data.as_ints
        cols.offset = <int64_t *>offset.data.as_longlongs
        if total >= NOGIL_MIN_BYTES:
            with nogil:
                unresolved = rp_stackcache_resolve(data, count, &self.fmap, &self.smap, &self.lmap,
                                                   <const uint64_t *>dead_ptrs.data.as_ulonglongs,
                                                   ndead, &cols)
        elif count:
            unresolved = rp_stackcache_resolve(data, count, &self.fmap, &self.smap, &self.lmap,
                                               <const uint64_t *>dead_ptrs.data.as_ulonglongs, ndead, &cols)
        if unresolved < 0:
            raise MemoryError()
        return stack, tid, tns, weight, cpu, flags, label, depth, offset, unresolved


def raw_key(const uint8_t[::1] buf, Py_ssize_t offset):
    """The raw stack key of the record at byte ``offset`` of a drained buffer:
    one byte of flags (those that change how a stack reads) then the raw
    frames, leaf first, as :func:`parse` makes them."""
    cdef Py_ssize_t total = buf.shape[0]
    if offset < 0 or offset + <Py_ssize_t>sizeof(rp_record) > total:
        raise IndexError(offset)
    cdef const rp_record *rec = <const rp_record *>&buf[offset]
    cdef Py_ssize_t nbytes = rec.nframes * sizeof(rp_frame)
    if offset + <Py_ssize_t>sizeof(rp_record) + nbytes > total:
        raise IndexError(offset)
    cdef bytes key = PyBytes_FromStringAndSize(NULL, nbytes + 1)
    (<char *>key)[0] = <char>(rec.flags & 0x3D)
    memcpy(<char *>key + 1, <const char *>rec + sizeof(rp_record), nbytes)
    return key


def _test_stack_hash_constant(bint on):
    """Test hook: every stack key hashes alike (exercises collision chains)."""
    rp_smap_test_constant_hash(on)


def code_object(uint64_t ptr):
    """The live code object at ``ptr`` (a new reference), or None.

    Only an address in the live-code registry (``csrc/codes.h``) is ever
    turned into a reference, or a statically allocated code object inside
    the interpreter's own image (never freed); anything else -- a torn
    frame's garbage, a freed code object -- is None without being read."""
    if not rp_codes_known(ptr) and not rp_codes_static(ptr):
        return None
    return <object><PyObject *>ptr


def only_main_interpreter():
    """True if the main interpreter is the only one (GIL held; the list is read
    without the runtime's lock, so a sub-interpreter being created right now
    may be missed)."""
    cdef PyInterpreterState *head = PyInterpreterState_Head()
    return head == PyInterpreterState_Main() and PyInterpreterState_Next(head) == NULL


def register_codes(codes):
    """Add live code objects to the registry (non-code items are ignored);
    returns how many were new.  Installs the code hooks first."""
    rp_codes_install()
    cdef int added = 0, rc
    for co in codes:
        rc = rp_codes_register(<void *>co)
        if rc < 0:
            raise MemoryError()
        added += rc
    return added


def dead_codes():
    """Every dead-code snapshot held: ``[(ptr, death_ns, seq), ...]`` in death order."""
    cdef uint64_t seq = rp_codes_first_seq(), end = rp_codes_mark()
    cdef const rp_dead_code *d
    out = []
    while seq < end:
        d = rp_codes_dead(seq)
        if d != NULL:
            out.append((d.ptr, d.death_ns, d.seq))
        seq += 1
    return out


def dead_code_info(uint64_t seq):
    """``(qualname, filename, firstlineno)`` of a dead-code snapshot, or None once released."""
    cdef const rp_dead_code *d = rp_codes_dead(seq)
    if d == NULL:
        return None
    return (<object>d.qualname, <object>d.filename, d.firstlineno)


def dead_code_line(uint64_t seq, uint64_t instr):
    """Line at raw instruction pointer ``instr`` of a dead-code snapshot, with
    :func:`code_line`'s conventions (-1: incomplete frame, or released)."""
    cdef const rp_dead_code *d = rp_codes_dead(seq)
    if d == NULL:
        return -1
    return rp_dead_code_line(d, instr)


def code_instr_address(object code, long lasti):
    """The raw instruction pointer of code unit ``lasti`` of ``code`` (tests)."""
    return rp_code_instr_address(<void *>code, lasti)


def linetable_line(bytes table, int firstlineno, long lasti):
    """Line of code unit ``lasti`` per the 3.11+ location table ``table`` (tests)."""
    return rp_linetable_line(<const unsigned char *><char *>table, len(table), firstlineno, lasti)


def code_line(object code, uint64_t instr):
    """Line executing at raw instruction pointer ``instr`` of ``code``.

    Returns -1 for an incomplete frame (not yet started: skip it) and 0 when
    the instruction has no line.
    """
    cdef long lasti = rp_code_lasti(<void *>code, instr)
    if lasti < 0:
        return -1
    cdef int line = PyCode_Addr2Line(<void *>code, <int>(lasti * 2))
    return line if line > 0 else 0


# ---------------------------------------------------------------- test harness
cdef class RingHarness:
    """Drive one ring from Python (tests): push like the handler, pop like the drain."""
    cdef rp_ring ring

    def __cinit__(self, uint64_t cap):
        if rp_ring_init(&self.ring, cap) != 0:
            raise MemoryError()

    def __dealloc__(self):
        rp_ring_destroy(&self.ring)

    def push(self, uint64_t tid, frames, uint64_t time_ns=0):
        """Write one record with the given (code, instr) pairs; False when dropped."""
        cdef uint64_t pos
        cdef uint32_t n = len(frames)
        cdef rp_record *rec = rp_ring_reserve(&self.ring, <uint32_t>(sizeof(rp_record) + n * sizeof(rp_frame)), &pos)
        if rec == NULL:
            return False
        cdef rp_frame *out = <rp_frame *>(rec + 1)
        rec.magic = RP_REC_MAGIC
        rec.nframes = n
        rec.flags = 0
        rec.depth = n
        rec.tid = tid
        rec.time_ns = time_ns
        rec.weight = 1
        rec.cpu_ns = 0
        rec.label = 0
        for i, (c, ip) in enumerate(frames):
            out[i].code = c
            out[i].instr = ip
        rec.len = <uint32_t>(sizeof(rp_record) + n * sizeof(rp_frame))
        rp_ring_commit(&self.ring, pos, rec)
        return True

    def pop_all(self):
        """Copy everything out; returns a list of (tid, [(code, instr), ...])."""
        cdef uint64_t n = rp_ring_pending(&self.ring)
        buf = bytearray(n)
        cdef uint8_t[::1] view = buf if n else None
        cdef uint64_t got = rp_ring_copy_out(&self.ring, &view[0], n, <uint64_t>-1) if n else 0
        out = []
        cdef Py_ssize_t off = 0
        cdef const rp_record *rec
        cdef const rp_frame *fr
        while off < <Py_ssize_t>got:
            rec = <const rp_record *>&view[off]
            fr = <const rp_frame *>(rec + 1)
            out.append((rec.tid, [(fr[j].code, fr[j].instr) for j in range(rec.nframes)]))
            off += rec.len
        return out

    def drain_bytes(self):
        """Copy everything out in the format of :func:`drain`'s buffer."""
        cdef uint64_t n = rp_ring_pending(&self.ring)
        buf = bytearray(n)
        cdef uint8_t[::1] view = buf if n else None
        cdef uint64_t got = rp_ring_copy_out(&self.ring, &view[0], n, <uint64_t>-1) if n else 0
        return bytes(buf[:got])

    @property
    def dropped(self):
        return rp_ring_dropped(&self.ring)

    @property
    def capacity(self):
        return self.ring.cap


cdef extern from "pprof.h":
    ctypedef struct rp_bytes:
        uint8_t *data
        size_t len
    ctypedef struct rp_pprof_in:
        size_t nsamples
        const int32_t *stack
        const int64_t *thread
        const int32_t *labels
        const int64_t *weight
        const int64_t *cpu_ns
        int64_t interval_ns
        int wall
        size_t nstacks
        const uint32_t *stack_start
        const int32_t *stack_frames
        size_t nstack_frames
        size_t nframes
        const int32_t *frame_function
        const int64_t *frame_line
        size_t nfunctions
        size_t nthreads
        const int64_t *thread_ids
        const uint32_t *thread_start
        const uint8_t *thread_fields
        size_t thread_fields_len
        size_t nlabel_sets
        const uint32_t *label_start
        const uint8_t *label_fields
        size_t label_fields_len
    ctypedef struct rp_pprof_out:
        rp_bytes samples
        rp_bytes locations
        int32_t *functions
        size_t nfunctions
    int rp_pprof_encode(const rp_pprof_in *inp, rp_pprof_out *out) nogil
    void rp_pprof_out_free(rp_pprof_out *out)


cdef const void *_first(const uint8_t[::1] view):
    return &view[0] if view.shape[0] else NULL


def pprof_samples(const int32_t[::1] stack, const int64_t[::1] thread, const int32_t[::1] labels,
                  const int64_t[::1] weight, const int64_t[::1] cpu_ns, int64_t interval_ns, bint wall,
                  const uint32_t[::1] stack_start, const int32_t[::1] stack_frames,
                  const int32_t[::1] frame_function, const int64_t[::1] frame_line, size_t nfunctions,
                  const int64_t[::1] thread_ids, const uint32_t[::1] thread_start, const uint8_t[::1] thread_fields,
                  const uint32_t[::1] label_start, const uint8_t[::1] label_fields):
    """The Sample and Location fields of a pprof Profile (``csrc/pprof.h``),
    encoded without the GIL, and the function indexes they use in id order.

    ``stack_start``, ``thread_start`` and ``label_start`` hold one offset more
    than their tables have entries.  Raises ValueError for an id out of range."""
    cdef Py_ssize_t n = stack.shape[0]
    if not (thread.shape[0] == labels.shape[0] == weight.shape[0] == cpu_ns.shape[0] == n):
        raise ValueError("sample columns differ in length")
    if frame_function.shape[0] != frame_line.shape[0]:
        raise ValueError("frame tables differ in length")
    if stack_start.shape[0] < 1 or thread_start.shape[0] != thread_ids.shape[0] + 1 or label_start.shape[0] < 1:
        raise ValueError("offset tables need one entry more than their tables")
    cdef rp_pprof_in inp
    inp.nsamples = <size_t>n
    inp.stack = &stack[0] if n else NULL
    inp.thread = &thread[0] if n else NULL
    inp.labels = &labels[0] if n else NULL
    inp.weight = &weight[0] if n else NULL
    inp.cpu_ns = &cpu_ns[0] if n else NULL
    inp.interval_ns = interval_ns
    inp.wall = 1 if wall else 0
    inp.nstacks = <size_t>(stack_start.shape[0] - 1)
    inp.stack_start = &stack_start[0]
    inp.nstack_frames = <size_t>stack_frames.shape[0]
    inp.stack_frames = &stack_frames[0] if stack_frames.shape[0] else NULL
    inp.nframes = <size_t>frame_function.shape[0]
    inp.frame_function = &frame_function[0] if frame_function.shape[0] else NULL
    inp.frame_line = &frame_line[0] if frame_line.shape[0] else NULL
    inp.nfunctions = nfunctions
    inp.nthreads = <size_t>thread_ids.shape[0]
    inp.thread_ids = &thread_ids[0] if thread_ids.shape[0] else NULL
    inp.thread_start = &thread_start[0]
    inp.thread_fields = <const uint8_t *>_first(thread_fields)
    inp.thread_fields_len = <size_t>thread_fields.shape[0]
    inp.nlabel_sets = <size_t>(label_start.shape[0] - 1)
    inp.label_start = &label_start[0]
    inp.label_fields = <const uint8_t *>_first(label_fields)
    inp.label_fields_len = <size_t>label_fields.shape[0]
    cdef rp_pprof_out out
    memset(&out, 0, sizeof(out))
    cdef int rc
    try:
        with nogil:
            rc = rp_pprof_encode(&inp, &out)
        if rc == -1:
            raise MemoryError()
        if rc != 0:
            raise ValueError("an id in the profile is out of range")
        samples = PyBytes_FromStringAndSize(<const char *>out.samples.data, out.samples.len) \
            if out.samples.len else b""
        locations = PyBytes_FromStringAndSize(<const char *>out.locations.data, out.locations.len) \
            if out.locations.len else b""
        functions = [out.functions[i] for i in range(out.nfunctions)]
    finally:
        rp_pprof_out_free(&out)
    return samples, locations, functions
