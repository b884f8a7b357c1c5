/* The CSV field-count scan: how many records of a chunk have fewer fields than the header,
 * and which is the first with more (segment/locate.py's field_counts, in one pass).
 *
 * Why: the numpy version (five vector scans and three searchsorted) cost ~0.2 s per 2M rows
 * on one thread, more than polars' own parse of the chunk. Here the chunk is read 64 bytes at
 * a time into three bit masks (quotes, newlines, delimiters; SSE2 compares on x86-64), the
 * quote state is a prefix XOR of the quote mask, so the bytes inside quotes are known without
 * a branch per byte, and only record ends (one bit each) cost a step of their own.
 *
 * Semantics are field_counts' exactly: every '"' toggles the quote state ('""' escapes keep
 * the parity); a record ends at a newline outside quotes; fields are the delimiters outside
 * quotes since the previous end, plus one (a blank line: one field); bytes after the last
 * newline are one more record, unless the chunk ends with a newline (even a quoted one).
 */
#include "native.h"

#if defined(SAS_X86)
#define SAS_SCAN_FAST __attribute__((target("sse2,popcnt")))
#endif

/* Set by use_portable(): the plain C masks even where SSE2 is there (tests run both). */
int sas_scan_portable = 0;

typedef struct {
    int64_t records, short_rows, long_index, long_fields, long_start;
} Scan;

typedef struct {
    uint64_t quote, newline, delim;
} Masks;

static inline void masks_portable(const uint8_t *p, uint8_t delim, Masks *m) {
    uint64_t q = 0, nl = 0, d = 0;
    for (int i = 0; i < 64; i++) {
        q |= (uint64_t)(p[i] == '"') << i;
        nl |= (uint64_t)(p[i] == '\n') << i;
        d |= (uint64_t)(p[i] == delim) << i;
    }
    m->quote = q, m->newline = nl, m->delim = d;
}

#ifdef SAS_SCAN_FAST
static inline SAS_SCAN_FAST void masks_sse2(const uint8_t *p, uint8_t delim, Masks *m) {
    const __m128i vq = _mm_set1_epi8('"'), vn = _mm_set1_epi8('\n');
    const __m128i vd = _mm_set1_epi8((char)delim);
    uint64_t q = 0, nl = 0, d = 0;
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        q |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vq)) << (16 * k);
        nl |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vn)) << (16 * k);
        d |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vd)) << (16 * k);
    }
    m->quote = q, m->newline = nl, m->delim = d;
}
#endif

/* Bit i: the parity of the quotes at positions 0..i (1: inside quotes after byte i). */
static inline uint64_t prefix_xor(uint64_t x) {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

static inline void record_end(Scan *s, int64_t fields, int64_t width, int64_t *start,
                              int64_t end) {
    if (fields < width) {
        s->short_rows++;
    } else if (fields > width && s->long_index < 0) {
        s->long_index = s->records, s->long_fields = fields, s->long_start = *start;
    }
    s->records++;
    *start = end + 1;
}

/* The whole scan; `fast` picks the mask builder (a constant once inlined). */
static inline __attribute__((always_inline)) void scan(const uint8_t *data, int64_t len,
                                                       uint8_t delim, int64_t width, int fast,
                                                       Scan *s) {
    uint64_t carry = 0;      /* all ones while inside quotes at a block's start */
    int64_t delims = 0;      /* delimiters outside quotes before the block */
    int64_t last = 0;        /* ... before the last record end */
    int64_t start = 0;       /* where the current record starts */
    uint8_t tail[64];
    for (int64_t pos = 0; pos < len; pos += 64) {
        const uint8_t *p = data + pos;
        uint64_t valid = ~0ULL;
        if (len - pos < 64) { /* the last bytes, padded: the mask drops the padding */
            memset(tail, 0, sizeof tail);
            memcpy(tail, p, (size_t)(len - pos));
            p = tail;
            valid = (1ULL << (len - pos)) - 1;
        }
        Masks m;
#ifdef SAS_SCAN_FAST
        if (fast)
            masks_sse2(p, delim, &m);
        else
#endif
            masks_portable(p, delim, &m);
        uint64_t inside = carry;
        if (m.quote & valid) {
            inside ^= prefix_xor(m.quote & valid);
            carry = (uint64_t)((int64_t)inside >> 63);
        }
        uint64_t ends = m.newline & valid & ~inside, outside = m.delim & valid & ~inside;
        while (ends) {
            int bit = __builtin_ctzll(ends);
            int64_t at = delims + __builtin_popcountll(outside & ((1ULL << bit) - 1));
            record_end(s, at - last + 1, width, &start, pos + bit);
            last = at;
            ends &= ends - 1;
        }
        delims += __builtin_popcountll(outside);
    }
    if (len > 0 && data[len - 1] != '\n') record_end(s, delims - last + 1, width, &start, len);
}

static void scan_portable(const uint8_t *data, int64_t len, uint8_t delim, int64_t width,
                          Scan *s) {
    scan(data, len, delim, width, 0, s);
}

#ifdef SAS_SCAN_FAST
static SAS_SCAN_FAST void scan_fast(const uint8_t *data, int64_t len, uint8_t delim,
                                    int64_t width, Scan *s) {
    scan(data, len, delim, width, 1, s);
}

static int cpu_has_popcnt(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 23) & 1;
}
#endif

/* ragged_scan(chunk, delimiter, width) -> (records, short, first_long_index,
 * first_long_fields, first_long_start): -1 for the last three when no record has more fields
 * than `width`. The delimiter is a byte other than '"' and '\n' (ValueError otherwise). */
PyObject *sas_py_ragged_scan(PyObject *self, PyObject *args) {
    PyObject *chunk_obj;
    int delimiter;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "Oin", &chunk_obj, &delimiter, &width)) return NULL;
    if (delimiter < 0 || delimiter > 255 || delimiter == '"' || delimiter == '\n' || width < 0) {
        PyErr_SetString(PyExc_ValueError, "the delimiter must be a byte other than '\"' and "
                                          "'\\n', the width not negative");
        return NULL;
    }
    Py_buffer chunk;
    if (PyObject_GetBuffer(chunk_obj, &chunk, PyBUF_SIMPLE) < 0) return NULL;
    Scan s = {0, 0, -1, -1, -1};
    Py_BEGIN_ALLOW_THREADS;
#ifdef SAS_SCAN_FAST
    if (!sas_scan_portable && cpu_has_popcnt())
        scan_fast(chunk.buf, chunk.len, (uint8_t)delimiter, width, &s);
    else
#endif
        scan_portable(chunk.buf, chunk.len, (uint8_t)delimiter, width, &s);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&chunk);
    return Py_BuildValue("(LLLLL)", (long long)s.records, (long long)s.short_rows,
                         (long long)s.long_index, (long long)s.long_fields,
                         (long long)s.long_start);
}
