/*
 * Hot loops of the identifier pipeline, in C: SHA-256 of many short strings, the email rules
 * and libphonenumber's rules for plain phone numbers.
 *
 * Why: polars-hash spends ~340 ns a value (hashing plus hex formatting plus a String per row),
 * the email rules are four polars passes (strip, lowercase, regex, hex check), ~250 ns a value,
 * and the vectorized phone rules ~1.5 us. Here each value is read once, straight out of polars'
 * Arrow string views, hashed with the CPU's SHA instructions when it has them, and written as
 * 64 hex characters into a matrix the encoder uses as is. The GIL is released, so the
 * pipeline's worker threads run in parallel.
 *
 * Pure data logic, like identifiers.py: no I/O. Anything this file cannot decide exactly (an
 * email with a character past U+017F, a phone number with letters or an unusual prefix) is
 * marked DEFER and decided by the polars path, which stays the definition. tests/test_native.py
 * and tests/test_phones_differential.py hold both to the same answers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "little-endian only (Arrow's buffers and the word tricks below); polars does the work elsewhere"
#endif
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define SAS_X86 1
#endif

/* ---------------------------------------------------------------- SHA-256 (FIPS 180-4) ---- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static const uint32_t H256[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t state[8], const uint8_t *data, size_t blocks) {
    for (; blocks; blocks--, data += 64) {
        uint32_t w[64];
        for (int t = 0; t < 16; t++) {
            w[t] = ((uint32_t)data[4 * t] << 24) | ((uint32_t)data[4 * t + 1] << 16) |
                   ((uint32_t)data[4 * t + 2] << 8) | (uint32_t)data[4 * t + 3];
        }
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ROTR(w[t - 15], 7) ^ ROTR(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ROTR(w[t - 2], 17) ^ ROTR(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) +
                          K256[t] + w[t];
            uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }
}

#ifdef SAS_X86
/* The SHA extensions (Goldmont, Zen and later): two rounds an instruction. The state lives as
 * ABEF / CDGH, the layout sha256rnds2 works on. */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani(uint32_t state[8],
                                                                      const uint8_t *data,
                                                                      size_t blocks) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1);
    __m128i cdgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);
    __m128i abef = _mm_alignr_epi8(tmp, cdgh, 8);
    cdgh = _mm_blend_epi16(cdgh, tmp, 0xF0);
    for (; blocks; blocks--, data += 64) {
        const __m128i abef_in = abef, cdgh_in = cdgh;
        __m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 0)), swap);
        __m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16)), swap);
        __m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 32)), swap);
        __m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 48)), swap);
#define SAS_ROUNDS4(w, g)                                                                      \
    do {                                                                                       \
        __m128i k = _mm_add_epi32((w), _mm_loadu_si128((const __m128i *)&K256[4 * (g)]));     \
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, k);                                           \
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(k, 0x0E));                  \
    } while (0)
/* W[t..t+3] from the four previous groups: a = W[t-16..], b = W[t-12..], c = W[t-8..],
 * d = W[t-4..]; the result replaces a. */
#define SAS_SCHEDULE(a, b, c, d)                                                               \
    (a) = _mm_sha256msg2_epu32(                                                                \
        _mm_add_epi32(_mm_sha256msg1_epu32((a), (b)), _mm_alignr_epi8((d), (c), 4)), (d))
        SAS_ROUNDS4(w0, 0);
        SAS_ROUNDS4(w1, 1);
        SAS_ROUNDS4(w2, 2);
        SAS_ROUNDS4(w3, 3);
        for (int g = 4; g < 16; g += 4) {
            SAS_SCHEDULE(w0, w1, w2, w3);
            SAS_ROUNDS4(w0, g);
            SAS_SCHEDULE(w1, w2, w3, w0);
            SAS_ROUNDS4(w1, g + 1);
            SAS_SCHEDULE(w2, w3, w0, w1);
            SAS_ROUNDS4(w2, g + 2);
            SAS_SCHEDULE(w3, w0, w1, w2);
            SAS_ROUNDS4(w3, g + 3);
        }
#undef SAS_ROUNDS4
#undef SAS_SCHEDULE
        abef = _mm_add_epi32(abef, abef_in);
        cdgh = _mm_add_epi32(cdgh, cdgh_in);
    }
    tmp = _mm_shuffle_epi32(abef, 0x1B);
    cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(tmp, cdgh, 0xF0));
    _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(cdgh, tmp, 8));
}

/* Two single-block messages at once: each round's instructions wait on the one before, so a
 * second independent message fills the pipeline almost for free. Writes both hex digests. */
__attribute__((target("sha,sse4.1,ssse3"))) static void shani_x2_hex(const uint8_t *b0,
                                                                    const uint8_t *b1,
                                                                    uint8_t *out0, uint8_t *out1) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&H256[0]), 0xB1);
    __m128i cdgh_in = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&H256[4]), 0x1B);
    const __m128i abef_in = _mm_alignr_epi8(tmp, cdgh_in, 8);
    cdgh_in = _mm_blend_epi16(cdgh_in, tmp, 0xF0);
    __m128i a0 = abef_in, c0 = cdgh_in, a1 = abef_in, c1 = cdgh_in;
    __m128i x0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b0 + 0)), swap);
    __m128i x1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b0 + 16)), swap);
    __m128i x2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b0 + 32)), swap);
    __m128i x3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b0 + 48)), swap);
    __m128i y0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b1 + 0)), swap);
    __m128i y1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b1 + 16)), swap);
    __m128i y2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b1 + 32)), swap);
    __m128i y3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b1 + 48)), swap);
#define SAS_R4(wx, wy, g)                                                                      \
    do {                                                                                       \
        const __m128i kk = _mm_loadu_si128((const __m128i *)&K256[4 * (g)]);                   \
        __m128i kx = _mm_add_epi32((wx), kk), ky = _mm_add_epi32((wy), kk);                    \
        c0 = _mm_sha256rnds2_epu32(c0, a0, kx);                                                \
        c1 = _mm_sha256rnds2_epu32(c1, a1, ky);                                                \
        a0 = _mm_sha256rnds2_epu32(a0, c0, _mm_shuffle_epi32(kx, 0x0E));                       \
        a1 = _mm_sha256rnds2_epu32(a1, c1, _mm_shuffle_epi32(ky, 0x0E));                       \
    } while (0)
#define SAS_S(a, b, c, d)                                                                      \
    (a) = _mm_sha256msg2_epu32(                                                                \
        _mm_add_epi32(_mm_sha256msg1_epu32((a), (b)), _mm_alignr_epi8((d), (c), 4)), (d))
    SAS_R4(x0, y0, 0);
    SAS_R4(x1, y1, 1);
    SAS_R4(x2, y2, 2);
    SAS_R4(x3, y3, 3);
    for (int g = 4; g < 16; g += 4) {
        SAS_S(x0, x1, x2, x3);
        SAS_S(y0, y1, y2, y3);
        SAS_R4(x0, y0, g);
        SAS_S(x1, x2, x3, x0);
        SAS_S(y1, y2, y3, y0);
        SAS_R4(x1, y1, g + 1);
        SAS_S(x2, x3, x0, x1);
        SAS_S(y2, y3, y0, y1);
        SAS_R4(x2, y2, g + 2);
        SAS_S(x3, x0, x1, x2);
        SAS_S(y3, y0, y1, y2);
        SAS_R4(x3, y3, g + 3);
    }
#undef SAS_R4
#undef SAS_S
    const __m128i digits = _mm_setr_epi8('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a',
                                         'b', 'c', 'd', 'e', 'f');
    const __m128i low = _mm_set1_epi8(0x0f);
    __m128i pairs[2][2] = {{a0, c0}, {a1, c1}};
    uint8_t *outs[2] = {out0, out1};
    for (int m = 0; m < 2; m++) {
        __m128i abef = _mm_add_epi32(pairs[m][0], abef_in);
        __m128i cdgh = _mm_add_epi32(pairs[m][1], cdgh_in);
        __m128i t = _mm_shuffle_epi32(abef, 0x1B);
        cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
        __m128i halves[2] = {_mm_blend_epi16(t, cdgh, 0xF0), _mm_alignr_epi8(cdgh, t, 8)};
        for (int h = 0; h < 2; h++) {
            __m128i bytes = _mm_shuffle_epi8(halves[h], swap); /* digest order */
            __m128i hi = _mm_shuffle_epi8(digits, _mm_and_si128(_mm_srli_epi16(bytes, 4), low));
            __m128i lo = _mm_shuffle_epi8(digits, _mm_and_si128(bytes, low));
            _mm_storeu_si128((__m128i *)(outs[m] + 32 * h), _mm_unpacklo_epi8(hi, lo));
            _mm_storeu_si128((__m128i *)(outs[m] + 32 * h + 16), _mm_unpackhi_epi8(hi, lo));
        }
    }
}

static int cpu_has_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 19)) || !(c & (1u << 9))) return 0; /* SSE4.1, SSSE3 */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 29) & 1; /* SHA */
}
#endif

typedef void (*compress_fn)(uint32_t state[8], const uint8_t *data, size_t blocks);
static compress_fn compress = compress_portable;

static const char HEX[] = "0123456789abcdef";

/* SHA-256 of data[0..len) as 64 lowercase hex characters at out. */
static void sha256_hex(const uint8_t *data, size_t len, uint8_t *out) {
    uint32_t state[8];
    memcpy(state, H256, sizeof state);
    size_t full = len / 64;
    if (full) compress(state, data, full);
    uint8_t tail[128];
    size_t rest = len - full * 64;
    memcpy(tail, data + full * 64, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
    memset(tail + rest + 1, 0, tail_len - rest - 1);
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    compress(state, tail, tail_len / 64);
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 4; j++) {
            uint8_t byte = (uint8_t)(state[i] >> (24 - 8 * j));
            out[8 * i + 2 * j] = (uint8_t)HEX[byte >> 4];
            out[8 * i + 2 * j + 1] = (uint8_t)HEX[byte & 15];
        }
    }
}

/* Hashes values as they come, two single-block ones at a time when the CPU has SHA-NI. */
typedef struct {
    uint8_t block[64];
    uint8_t *out;
    int pending;
} Hasher;

/* The one padded block of a message of at most 55 bytes. */
static inline void pad_one(const uint8_t *data, size_t len, uint8_t block[64]) {
    memcpy(block, data, len);
    block[len] = 0x80;
    memset(block + len + 1, 0, 55 - len);
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) block[63 - i] = (uint8_t)(bits >> (8 * i));
}

static inline void hasher_add(Hasher *h, const uint8_t *data, size_t len, uint8_t *out) {
#ifdef SAS_X86
    if (len <= 55 && compress == compress_shani) {
        if (!h->pending) {
            pad_one(data, len, h->block);
            h->out = out;
            h->pending = 1;
            return;
        }
        uint8_t block[64];
        pad_one(data, len, block);
        shani_x2_hex(h->block, block, h->out, out);
        h->pending = 0;
        return;
    }
#endif
    sha256_hex(data, len, out);
}

static void hasher_flush(Hasher *h) {
    if (!h->pending) return;
    uint32_t state[8];
    memcpy(state, H256, sizeof state);
    compress(state, h->block, 1);
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 4; j++) {
            uint8_t byte = (uint8_t)(state[i] >> (24 - 8 * j));
            h->out[8 * i + 2 * j] = (uint8_t)HEX[byte >> 4];
            h->out[8 * i + 2 * j + 1] = (uint8_t)HEX[byte & 15];
        }
    }
    h->pending = 0;
}

/* ------------------------------------------------------------- Arrow string views --------- */

/* A column of polars strings as Arrow exports it (string_view): 16-byte views, values of up to
 * 12 bytes inline, longer ones in numbered data buffers. Every view is checked against the
 * buffers before it is read. */
typedef struct {
    Py_buffer views;
    Py_buffer validity; /* Arrow's bitmap (bit set: a value), or obj NULL: no nulls */
    Py_buffer *data;
    Py_ssize_t ndata;
    Py_ssize_t offset;
    Py_ssize_t n;
} Column;

static void column_release(Column *col) {
    if (col->views.obj) PyBuffer_Release(&col->views);
    if (col->validity.obj) PyBuffer_Release(&col->validity);
    for (Py_ssize_t i = 0; i < col->ndata; i++) {
        if (col->data[i].obj) PyBuffer_Release(&col->data[i]);
    }
    PyMem_Free(col->data);
    col->data = NULL;
    col->ndata = 0;
}

/* Fill col from (views, data buffers, offset, n); 0 on success, -1 with an exception set. */
static inline int column_null(const Column *col, Py_ssize_t i) {
    if (col->validity.obj == NULL) return 0;
    Py_ssize_t bit = col->offset + i;
    return !((((const uint8_t *)col->validity.buf)[bit >> 3] >> (bit & 7)) & 1);
}

/* Fill col from (views, validity or None, data buffers, offset, n); 0 on success, -1 with an
 * exception set. Every non-null view is checked against the buffers here, once. */
static int column_open(Column *col, PyObject *views, PyObject *validity, PyObject *data,
                       Py_ssize_t offset, Py_ssize_t n) {
    memset(col, 0, sizeof *col);
    if (offset < 0 || n < 0 || n > PY_SSIZE_T_MAX / 64) {
        PyErr_SetString(PyExc_ValueError, "offset and length must be small non-negative numbers");
        return -1;
    }
    if (PyObject_GetBuffer(views, &col->views, PyBUF_SIMPLE) < 0) return -1;
    Py_ssize_t total = col->views.len / 16;
    if (offset > total || n > total - offset) {
        PyErr_SetString(PyExc_ValueError, "the views buffer is shorter than offset + length");
        column_release(col);
        return -1;
    }
    if (validity != Py_None) {
        if (PyObject_GetBuffer(validity, &col->validity, PyBUF_SIMPLE) < 0) {
            column_release(col);
            return -1;
        }
        if (col->validity.len < (offset + n + 7) / 8) {
            PyErr_SetString(PyExc_ValueError, "the validity bitmap is too short");
            column_release(col);
            return -1;
        }
    }
    PyObject *seq = PySequence_Fast(data, "data buffers must be a sequence");
    if (seq == NULL) {
        column_release(col);
        return -1;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    col->data = PyMem_Calloc(count ? (size_t)count : 1, sizeof(Py_buffer));
    if (col->data == NULL) {
        Py_DECREF(seq);
        column_release(col);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &col->data[i], PyBUF_SIMPLE) <
            0) {
            col->ndata = i;
            Py_DECREF(seq);
            column_release(col);
            return -1;
        }
    }
    col->ndata = count;
    Py_DECREF(seq);
    col->offset = offset;
    col->n = n;
    const uint8_t *v = (const uint8_t *)col->views.buf + 16 * offset;
    for (Py_ssize_t i = 0; i < n; i++, v += 16) {
        uint32_t len, index, start;
        memcpy(&len, v, 4);
        if (len <= 12 || column_null(col, i)) continue;
        memcpy(&index, v + 8, 4);
        memcpy(&start, v + 12, 4);
        if ((uint64_t)index >= (uint64_t)count ||
            (uint64_t)start + len > (uint64_t)col->data[index].len) {
            PyErr_SetString(PyExc_ValueError, "a string view points outside its data buffers");
            column_release(col);
            return -1;
        }
    }
    return 0;
}

/* Pointer to value i's bytes and its length (views already checked). */
static inline const uint8_t *column_value(const Column *col, Py_ssize_t i, size_t *len) {
    static const uint8_t nothing[1] = {0};
    if (column_null(col, i)) { /* a null's view may hold anything: it is read as empty */
        *len = 0;
        return nothing;
    }
    const uint8_t *v = (const uint8_t *)col->views.buf + 16 * (col->offset + i);
    uint32_t n, index, start;
    memcpy(&n, v, 4);
    *len = n;
    if (n <= 12) return v + 4;
    memcpy(&index, v + 8, 4);
    memcpy(&start, v + 12, 4);
    return (const uint8_t *)col->data[index].buf + start;
}

static int writable(PyObject *obj, Py_buffer *out, Py_ssize_t need, const char *what) {
    if (PyObject_GetBuffer(obj, out, PyBUF_WRITABLE) < 0) return -1;
    if (out->len < need) {
        PyErr_Format(PyExc_ValueError, "%s buffer too small: %zd bytes, need %zd", what, out->len,
                     need);
        PyBuffer_Release(out);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------- sha256_hex ----------- */

static PyObject *py_sha256_hex(PyObject *self, PyObject *args) {
    PyObject *views, *validity, *data, *out_obj;
    Py_ssize_t offset, n;
    if (!PyArg_ParseTuple(args, "OOOnnO", &views, &validity, &data, &offset, &n, &out_obj))
        return NULL;
    Column col;
    if (column_open(&col, views, validity, data, offset, n) < 0) return NULL;
    Py_buffer out;
    if (writable(out_obj, &out, 64 * n, "output") < 0) {
        column_release(&col);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS;
    uint8_t *o = out.buf;
    Hasher hasher = {.pending = 0};
    for (Py_ssize_t i = 0; i < n; i++, o += 64) {
        size_t len;
        const uint8_t *value = column_value(&col, i, &len);
        hasher_add(&hasher, value, len, o);
    }
    hasher_flush(&hasher);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&out);
    column_release(&col);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------- emails --------------- */

/* Status codes, as identifiers.CODES numbers them. */
enum { E_HASHED = 0, E_PREHASHED = 1, E_EMPTY = 2, E_MALFORMED = 3, E_DEFER = 255 };

/* The longest value decided here; longer ones (never real emails) go to polars. */
#define EMAIL_MAX 320

/* Byte classes for the ASCII pass: a banned character (whitespace or control), a hex digit,
 * a byte of a multi-byte character. LOWER is ASCII lowercasing. Filled at import. */
enum { C_BANNED = 1, C_HEX = 2, C_HIGH = 4 };
static uint8_t CLASS[256], LOWER[256];

static void tables_init(void) {
    for (int c = 0; c < 256; c++) {
        CLASS[c] = (uint8_t)((c <= 0x20 || c == 0x7f ? C_BANNED : 0) |
                             ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                                      (c >= 'A' && c <= 'F')
                                  ? C_HEX
                                  : 0) |
                             (c >= 0x80 ? C_HIGH : 0));
        LOWER[c] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
}

/* Rust's char::is_whitespace restricted to ASCII: what polars' strip_chars() strips. */
static inline int ascii_space(uint8_t c) { return c == ' ' || (c >= 0x09 && c <= 0x0d); }

static inline int is_hex(uint8_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Lowercase of a code point in U+0080..U+017F (Latin-1 Supplement, Latin Extended-A), as
 * Unicode's simple mapping gives it, or -1 when this file leaves the value to polars (U+0130,
 * whose lowercase is two code points). */
static inline int latin_lower(int cp) {
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 0x20;
    if (cp < 0x100) return cp;
    if (cp == 0x130) return -1;
    if ((cp <= 0x12F) || (cp >= 0x132 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177))
        return cp | 1;
    if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E))
        return (cp & 1) ? cp + 1 : cp;
    if (cp == 0x178) return 0xFF;
    return cp; /* U+0131, U+0138, U+0149, U+017F: lowercase already */
}

/* Not allowed anywhere in an email by the rules' regex: whitespace (\s), control (\p{Cc})
 * and format (\p{Cf}) characters, for the code points handled here. */
static inline int banned_cp(int cp) {
    return cp <= 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad;
}

static inline int gmail_domain(const uint8_t *domain, size_t len) {
    return (len == 9 && memcmp(domain, "gmail.com", 9) == 0) ||
           (len == 14 && memcmp(domain, "googlemail.com", 14) == 0);
}

/* Valid as the rules' regex says, for a lowercased value with exactly one '@' at `at`. */
static int email_valid(const uint8_t *buf, size_t len, size_t at, const uint8_t *flags) {
    if (at == 0 || at + 1 >= len) return 0;
    for (size_t i = 0; i < at; i++) {
        if (flags[i]) return 0;
    }
    /* The domain: labels without dots, none empty, at least two. */
    if (buf[at + 1] == '.' || buf[len - 1] == '.') return 0;
    int dots = 0;
    for (size_t i = at + 1; i < len; i++) {
        if (flags[i]) return 0;
        if (buf[i] == '.') {
            if (buf[i - 1] == '.') return 0;
            dots++;
        }
    }
    return dots > 0;
}

#ifdef SAS_X86
/* The common case in 16-byte SSE2 steps: a value of at most 64 bytes, all ASCII, no banned
 * character, not a Gmail address under --gmail-canonical. Each byte class becomes a 64-bit
 * mask, and the domain rules are bit tests. Returns the status, or -1 to take the general
 * path (which decides every value). The lowercased value is left in buf. */
static int email_ascii64(const uint8_t *v, size_t m, int gmail, uint8_t *buf) {
    uint8_t padded[64] __attribute__((aligned(16)));
    memset(padded, 0, sizeof padded);
    memcpy(padded, v, m);
    uint64_t high = 0, banned = 0, ats = 0, dots = 0;
    const __m128i before_a = _mm_set1_epi8('A' - 1), after_z = _mm_set1_epi8('Z' + 1);
    const __m128i space_up = _mm_set1_epi8(0x21), del = _mm_set1_epi8(0x7f);
    const __m128i minus1 = _mm_set1_epi8(-1), case_bit = _mm_set1_epi8(0x20);
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_load_si128((const __m128i *)(padded + 16 * k));
        /* Signed compares: bytes >= 0x80 are negative, so never upper case nor "<= 0x20". */
        __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(x, before_a), _mm_cmplt_epi8(x, after_z));
        _mm_storeu_si128((__m128i *)(buf + 16 * k),
                         _mm_add_epi8(x, _mm_and_si128(upper, case_bit)));
        __m128i ctl = _mm_or_si128(
            _mm_and_si128(_mm_cmplt_epi8(x, space_up), _mm_cmpgt_epi8(x, minus1)),
            _mm_cmpeq_epi8(x, del));
        int shift = 16 * k;
        high |= (uint64_t)(uint16_t)_mm_movemask_epi8(x) << shift;
        banned |= (uint64_t)(uint16_t)_mm_movemask_epi8(ctl) << shift;
        ats |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('@')))
               << shift;
        dots |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('.')))
                << shift;
    }
    uint64_t used = m == 64 ? ~(uint64_t)0 : (((uint64_t)1 << m) - 1);
    banned &= used; /* the zero padding is not part of the value */
    if (high || m == 64) return -1; /* non-ASCII, or maybe a pre-hashed digest */
    if (__builtin_popcountll(ats) != 1) return E_MALFORMED;
    size_t at = (size_t)__builtin_ctzll(ats);
    if (gmail && gmail_domain(buf + at + 1, m - at - 1)) return -1;
    if (banned) return E_MALFORMED;
    /* The domain: at least one dot, none first, last or next to another. */
    uint64_t domain = used & ~(((uint64_t)2 << at) - 1);
    if (at == 0 || domain == 0) return E_MALFORMED;
    if ((dots >> (at + 1)) & 1 || (dots >> (m - 1)) & 1) return E_MALFORMED;
    if ((dots & (dots >> 1) & domain) || !(dots & domain)) return E_MALFORMED;
    return E_HASHED;
}
#endif

/* One email → its status; its normalized bytes are left in buf[0..*out_len). flags[i] is
 * nonzero where buf[i] starts or continues a banned character. */
static int email_rules(const uint8_t *value, size_t len, int gmail, uint8_t *buf,
                       uint8_t *flags, size_t *out_len) {
    size_t start = 0, end = len;
    while (start < end && ascii_space(value[start])) start++;
    while (end > start && ascii_space(value[end - 1])) end--;
    if (start == end) return E_EMPTY;
    size_t m = end - start;
    if (m > EMAIL_MAX) return E_DEFER;
    const uint8_t *v = value + start;
#ifdef SAS_X86
    if (m <= 64) {
        int code = email_ascii64(v, m, gmail, buf);
        if (code >= 0) {
            *out_len = m;
            return code;
        }
    }
#endif
    /* ASCII first: one table-driven pass, no branch per byte. */
    uint8_t any = 0, all = C_HEX;
    for (size_t i = 0; i < m; i++) {
        uint8_t c = v[i], cls = CLASS[c];
        any |= cls;
        all &= cls;
        buf[i] = LOWER[c];
        flags[i] = cls & C_BANNED;
    }
    if (!(any & C_HIGH)) {
        *out_len = m;
        if (m == 64 && (all & C_HEX)) return E_PREHASHED;
        const uint8_t *first = memchr(buf, '@', m);
        if (first == NULL || memchr(first + 1, '@', m - (size_t)(first - buf) - 1) != NULL)
            return E_MALFORMED;
        size_t at = (size_t)(first - buf);
        if (!(any & C_BANNED) && !(gmail && gmail_domain(buf + at + 1, m - at - 1)))
            return email_valid(buf, m, at, flags) ? E_HASHED : E_MALFORMED;
    }
    /* U+0085 and U+00A0 at either end are whitespace the rules strip: leave those to polars
     * (other Unicode whitespace is outside the code points decided here anyway). */
    if (m >= 2 && ((v[0] == 0xC2 && (v[1] == 0x85 || v[1] == 0xA0)) ||
                   (v[m - 2] == 0xC2 && (v[m - 1] == 0x85 || v[m - 1] == 0xA0))))
        return E_DEFER;
    size_t ats = 0, at = 0;
    int hex = m == 64;
    for (size_t i = 0; i < m; i++) {
        uint8_t c = v[i];
        if (c < 0x80) {
            hex &= is_hex(c);
            buf[i] = LOWER[c];
            flags[i] = (uint8_t)(c <= 0x20 || c == 0x7f);
            if (c == '@') {
                ats++;
                at = i;
            }
            continue;
        }
        /* Two-byte sequences of U+0080..U+017F; anything else is polars' to decide. */
        if (c < 0xC2 || c > 0xC5 || i + 1 >= m || (v[i + 1] & 0xC0) != 0x80) return E_DEFER;
        int cp = ((c & 0x1F) << 6) | (v[i + 1] & 0x3F);
        int lower = latin_lower(cp);
        if (lower < 0) return E_DEFER;
        buf[i] = (uint8_t)(0xC0 | (lower >> 6));
        buf[i + 1] = (uint8_t)(0x80 | (lower & 0x3F));
        flags[i] = flags[i + 1] = (uint8_t)banned_cp(cp);
        hex = 0;
        i++;
    }
    *out_len = m;
    if (hex) return E_PREHASHED;
    if (ats != 1) return E_MALFORMED;
    if (gmail) {
        const uint8_t *domain = buf + at + 1;
        size_t dlen = m - at - 1;
        if (gmail_domain(domain, dlen)) {
            /* The rules drop "+..." with a regex whose "." stops at a newline, so a newline
             * in the local part survives it: the result is malformed either way. */
            if (memchr(buf, '\n', at) != NULL) return E_MALFORMED;
            size_t w = 0;
            for (size_t i = 0; i < at && buf[i] != '+'; i++) {
                if (buf[i] != '.') {
                    flags[w] = flags[i];
                    buf[w++] = buf[i];
                }
            }
            memmove(buf + w, buf + at, m - at);
            memmove(flags + w, flags + at, m - at);
            m = w + 1 + dlen;
            at = w;
            *out_len = m;
        }
    }
    return email_valid(buf, m, at, flags) ? E_HASHED : E_MALFORMED;
}

static PyObject *py_emails(PyObject *self, PyObject *args) {
    PyObject *views, *validity, *data, *status_obj, *out_obj;
    Py_ssize_t offset, n;
    int gmail;
    if (!PyArg_ParseTuple(args, "OOOnnpOO", &views, &validity, &data, &offset, &n, &gmail,
                          &status_obj, &out_obj))
        return NULL;
    Column col;
    if (column_open(&col, views, validity, data, offset, n) < 0) return NULL;
    Py_buffer status, out;
    if (writable(status_obj, &status, n, "status") < 0) {
        column_release(&col);
        return NULL;
    }
    if (writable(out_obj, &out, 64 * n, "output") < 0) {
        PyBuffer_Release(&status);
        column_release(&col);
        return NULL;
    }
    Py_ssize_t deferred = 0;
    Py_BEGIN_ALLOW_THREADS;
    uint8_t *codes = status.buf;
    uint8_t *o = out.buf;
    uint8_t buf[EMAIL_MAX], flags[EMAIL_MAX];
    Hasher hasher = {.pending = 0};
    for (Py_ssize_t i = 0; i < n; i++, o += 64) {
        size_t len, m = 0;
        const uint8_t *value = column_value(&col, i, &len);
        int code = email_rules(value, len, gmail, buf, flags, &m);
        codes[i] = (uint8_t)code;
        if (code == E_HASHED) {
            hasher_add(&hasher, buf, m, o);
        } else if (code == E_PREHASHED) {
            memcpy(o, buf, 64);
        } else if (code == E_DEFER) {
            deferred++;
        }
    }
    hasher_flush(&hasher);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&out);
    PyBuffer_Release(&status);
    column_release(&col);
    return PyLong_FromSsize_t(deferred);
}

/* ------------------------------------------------------------------- phones --------------- */

/* libphonenumber's parse + is_valid_number for the plain forms: an optional leading '+', ASCII
 * digits and the separators " -.()/". The national-number patterns of every region come in as
 * DFAs over digits (built from the installed phonenumbers' metadata by phones_native.py), so
 * validity is one table walk per pattern. Whatever is not decided exactly here (letters,
 * extensions, other characters, short or odd numbers, a national prefix that is not a plain
 * digit string, numbers that might carry the default calling code) is marked P_DEFER and
 * decided by the polars path and libphonenumber; P_NEED asks for a calling code's metadata. */

enum { P_DEFER = 255, P_NEED = 254 };
enum {
    R_CC,
    R_NP_MODE, /* national prefix: 0 none, 1 literals, 2 regex (a DFA says if it may match) */
    R_GENERAL,
    R_VGENERAL,
    R_VTYPES,
    R_LEADING,
    R_KEYED,
    R_STRIP,
    R_NP_DFA,
    R_FIELDS
};
enum { NP_NONE = 0, NP_LITERALS = 1, NP_REGEX = 2 };
#define NP_SLOTS 8 /* literals a region, each: a length byte and up to 7 digits */
enum { CC_UNKNOWN = 0, CC_READY = 1, CC_NEED = 2, CC_DEFER = 3 };
#define PHONE_MAX_INPUT 250
#define NSN_MIN 2
#define NSN_MAX 17

typedef struct {
    const int32_t *trans;
    const uint8_t *accept;
    Py_ssize_t states;
    const int32_t *regions;
    Py_ssize_t nregions;
    const uint8_t *np_text; /* NP_SLOTS * 8 bytes a region, in the regex's priority order */
    const int32_t *cc_first, *cc_count, *cc_list;
    const uint8_t *cc_state; /* 1000 entries */
} PhoneTables;

static int dfa_full(const PhoneTables *t, int32_t q, const uint8_t *s, size_t n) {
    if (q < 0) return 0;
    for (size_t i = 0; i < n; i++) {
        q = t->trans[(size_t)q * 10 + (size_t)(s[i] - '0')];
        if (q < 0) return 0;
    }
    return t->accept[q];
}

static int dfa_prefix(const PhoneTables *t, int32_t q, const uint8_t *s, size_t n) {
    if (q < 0) return 0;
    if (t->accept[q]) return 1;
    for (size_t i = 0; i < n; i++) {
        q = t->trans[(size_t)q * 10 + (size_t)(s[i] - '0')];
        if (q < 0) return 0;
        if (t->accept[q]) return 1;
    }
    return 0;
}

/* _number_type_helper(...) != UNKNOWN: the general description and some type match. */
static int type_ok(const PhoneTables *t, const int32_t *r, const uint8_t *nsn, size_t n) {
    uint8_t key[NSN_MAX + 2];
    const uint8_t *k = nsn;
    size_t kn = n;
    if (r[R_KEYED]) {
        key[0] = (uint8_t)('0' + n / 10);
        key[1] = (uint8_t)('0' + n % 10);
        memcpy(key + 2, nsn, n);
        k = key;
        kn = n + 2;
    }
    return dfa_full(t, r[R_VGENERAL], k, kn) && dfa_full(t, r[R_VTYPES], k, kn);
}

typedef struct {
    int32_t home;  /* default region index */
    int national_ok;
    const uint8_t *idd; /* the default region's international prefix, plain digits */
    size_t idd_len;
    const uint8_t *dcc; /* the default calling code as digits */
    size_t dcc_len;
} PhoneDefault;

/* One stripped value → P_* / 0 (valid: E.164 digits in e164, length in *e164_len) / 1
 * (invalid_number) / 2 (not_a_number). *need gets the calling code whose metadata is missing (P_NEED). */
static int phone_rules(const PhoneTables *t, const PhoneDefault *d, const uint8_t *v, size_t m,
                       uint8_t *e164, size_t *e164_len, int *need) {
    /* 64 characters may be a pre-hashed digest, which the rules check before anything. */
    if (m > PHONE_MAX_INPUT || m == 64) return P_DEFER;
    uint8_t digits[PHONE_MAX_INPUT];
    size_t nd = 0;
    int plus = v[0] == '+', plain = 1, ascii = 1;
    for (size_t i = plus; i < m; i++) {
        uint8_t c = v[i];
        if (c >= '0' && c <= '9') {
            digits[nd++] = c;
        } else if (!(c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/')) {
            plain = 0;
            ascii &= c < 0x80;
        }
    }
    /* No digit at all (and no other script's digits): parse finds no number to start. */
    if (nd == 0 && ascii) return 2;
    if (!plain || nd < 3) return P_DEFER;
    const uint8_t *rest = digits;
    size_t rn = nd;
    int intl = plus;
    if (!plus) {
        if (d->idd_len && nd >= d->idd_len && memcmp(digits, d->idd, d->idd_len) == 0) {
            /* libphonenumber takes the prefix as an IDD even with nothing after it (then
             * too short), but not before a 0: both are left to the polars path. */
            if (nd == d->idd_len || digits[d->idd_len] == '0') return P_DEFER;
            rest += d->idd_len;
            rn -= d->idd_len;
            intl = 1;
        } else if (!d->national_ok) {
            return P_DEFER;
        }
    }
    int32_t region;
    int cc;
    const uint8_t *raw;
    size_t raw_n;
    if (intl) {
        if (rn <= NSN_MIN || rest[0] == '0') return P_DEFER;
        cc = -1;
        size_t len = 0;
        int value = 0;
        for (size_t i = 0; i < 3 && i < rn; i++) {
            value = 10 * value + (rest[i] - '0');
            if (t->cc_state[value] != CC_UNKNOWN) {
                cc = value;
                len = i + 1;
                break;
            }
        }
        if (cc < 0) return P_DEFER;
        if (t->cc_state[cc] == CC_NEED) {
            *need = cc;
            return P_NEED;
        }
        if (t->cc_state[cc] != CC_READY) return P_DEFER;
        region = t->cc_list[t->cc_first[cc]];
        raw = rest + len;
        raw_n = rn - len;
    } else {
        if (nd >= d->dcc_len && memcmp(digits, d->dcc, d->dcc_len) == 0) return P_DEFER;
        region = d->home;
        cc = t->regions[R_FIELDS * region + R_CC];
        if (t->cc_state[cc] != CC_READY) return P_DEFER; /* its code's tables: checked */
        raw = digits;
        raw_n = nd;
    }
    const int32_t *r = t->regions + R_FIELDS * region;
    /* _maybe_strip_national_prefix_carrier_code, then the length test parse applies. The
     * prefix regex matches the first of its literals that starts the number (backtracking
     * order); a regex that is not a short list of literals is only followed where its DFA
     * says it cannot match at all. */
    const uint8_t *nsn = raw;
    size_t n = raw_n;
    int matched = 0;
    size_t np = 0;
    if (r[R_NP_MODE] == NP_LITERALS) {
        const uint8_t *slot = t->np_text + (size_t)NP_SLOTS * 8 * (size_t)region;
        for (int k = 0; k < NP_SLOTS && slot[8 * k] != 0xFF; k++) {
            size_t len = slot[8 * k];
            if (len <= raw_n && memcmp(raw, slot + 8 * k + 1, len) == 0) {
                matched = 1;
                np = len;
                break;
            }
        }
    } else if (r[R_NP_MODE] != NP_NONE) {
        if (r[R_NP_MODE] != NP_REGEX || r[R_NP_DFA] < 0 || dfa_prefix(t, r[R_NP_DFA], raw, raw_n))
            return P_DEFER;
    }
    if (matched && raw_n > 0) {
        const uint8_t *cand = raw + np;
        size_t cn = raw_n - np;
        int keep = dfa_full(t, r[R_GENERAL], raw, raw_n) && !dfa_full(t, r[R_GENERAL], cand, cn);
        if (!keep && cn < 32 && ((uint32_t)r[R_STRIP] >> cn) & 1) {
            nsn = cand;
            n = cn;
        }
    }
    if (n < NSN_MIN || n > NSN_MAX) return P_DEFER;
    /* is_valid_number: the first region of the calling code that claims the number. */
    int32_t first = t->cc_first[cc], count = t->cc_count[cc];
    int valid = 0;
    if (count == 1) {
        valid = type_ok(t, t->regions + R_FIELDS * t->cc_list[first], nsn, n);
    } else {
        for (int32_t i = 0; i < count; i++) {
            const int32_t *o = t->regions + R_FIELDS * t->cc_list[first + i];
            if (o[R_LEADING] >= 0) {
                if (dfa_prefix(t, o[R_LEADING], nsn, n)) {
                    valid = type_ok(t, o, nsn, n);
                    break;
                }
            } else if (type_ok(t, o, nsn, n)) { /* claims it by being valid there */
                valid = 1;
                break;
            }
        }
    }
    if (!valid) return 1;
    size_t w = 0;
    e164[w++] = '+';
    if (cc >= 100) e164[w++] = (uint8_t)('0' + cc / 100);
    if (cc >= 10) e164[w++] = (uint8_t)('0' + cc / 10 % 10);
    e164[w++] = (uint8_t)('0' + cc % 10);
    memcpy(e164 + w, nsn, n);
    *e164_len = w + n;
    return 0;
}

static int get_buffer(PyObject *seq, Py_ssize_t i, Py_buffer *out) {
    return PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), out, PyBUF_SIMPLE);
}

/* Every index in the tables points inside them; 0, or -1 with ValueError. */
static int tables_check(const PhoneTables *t, Py_ssize_t ncc_list) {
    for (Py_ssize_t i = 0; i < 10 * t->states; i++) {
        if (t->trans[i] < -1 || t->trans[i] >= t->states) goto bad;
    }
    for (Py_ssize_t r = 0; r < t->nregions; r++) {
        const int32_t *f = t->regions + R_FIELDS * r;
        if (f[R_CC] < 0 || f[R_CC] > 999 || f[R_NP_MODE] < 0 || f[R_NP_MODE] > 3) goto bad;
        for (int k = R_GENERAL; k <= R_NP_DFA; k++) {
            if (k == R_KEYED || k == R_STRIP) continue;
            if (f[k] < -1 || f[k] >= t->states) goto bad;
        }
        const uint8_t *slot = t->np_text + (size_t)NP_SLOTS * 8 * (size_t)r;
        for (int k = 0; k < NP_SLOTS; k++) {
            if (slot[8 * k] != 0xFF && slot[8 * k] > 7) goto bad;
        }
    }
    for (int cc = 0; cc < 1000; cc++) {
        if (t->cc_state[cc] != CC_READY) continue;
        if (t->cc_first[cc] < 0 || t->cc_count[cc] < 1 ||
            (Py_ssize_t)t->cc_first[cc] + t->cc_count[cc] > ncc_list)
            goto bad;
        for (int32_t i = 0; i < t->cc_count[cc]; i++) {
            int32_t r = t->cc_list[t->cc_first[cc] + i];
            if (r < 0 || r >= t->nregions) goto bad;
        }
    }
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "phone tables are inconsistent");
    return -1;
}

static PyObject *py_phones(PyObject *self, PyObject *args) {
    PyObject *views, *validity, *data, *tables, *codes_obj, *out_obj, *need_obj;
    Py_ssize_t offset, n, home;
    int national_ok, mode;
    int code_hashed, code_empty, code_invalid, code_nan;
    const char *idd, *dcc;
    Py_ssize_t idd_len, dcc_len;
    if (!PyArg_ParseTuple(args, "OOOnnOnpy#y#iiiiiOOO", &views, &validity, &data, &offset, &n, &tables,
                          &home, &national_ok, &idd, &idd_len, &dcc, &dcc_len, &code_hashed,
                          &code_empty, &code_invalid, &code_nan, &mode, &codes_obj, &out_obj,
                          &need_obj))
        return NULL;
    size_t width = mode ? 24 : 64;
    PyObject *seq = PySequence_Fast(tables, "tables must be a sequence");
    if (seq == NULL) return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != 8) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "tables must hold 8 buffers");
        return NULL;
    }
    Py_buffer b[8];
    int got = 0;
    for (; got < 8; got++) {
        if (get_buffer(seq, got, &b[got]) < 0) break;
    }
    Py_DECREF(seq);
    Column col;
    Py_buffer codes, out, need;
    int have_col = 0, have_codes = 0, have_out = 0, have_need = 0;
    PyObject *result = NULL;
    if (got < 8) goto done;
    PhoneTables t = {
        .trans = b[0].buf, .states = b[0].len / 40, .accept = b[1].buf,
        .regions = b[2].buf, .nregions = b[2].len / (4 * R_FIELDS), .np_text = b[3].buf,
        .cc_first = b[4].buf, .cc_count = b[5].buf, .cc_list = b[6].buf, .cc_state = b[7].buf,
    };
    if (b[1].len < t.states || b[3].len < NP_SLOTS * 8 * t.nregions || b[4].len < 4000 ||
        b[5].len < 4000 || b[7].len < 1000 || home < 0 || home >= t.nregions || idd_len > 8 ||
        dcc_len < 1 || dcc_len > 3) {
        PyErr_SetString(PyExc_ValueError, "phone tables have the wrong sizes");
        goto done;
    }
    if (tables_check(&t, b[6].len / 4) < 0) goto done;
    if (column_open(&col, views, validity, data, offset, n) < 0) goto done;
    have_col = 1;
    if (writable(codes_obj, &codes, n, "codes") < 0) goto done;
    have_codes = 1;
    if (writable(out_obj, &out, (Py_ssize_t)width * n, "output") < 0) goto done;
    have_out = 1;
    if (writable(need_obj, &need, 2 * n, "need") < 0) goto done;
    have_need = 1;
    PhoneDefault d = {.home = (int32_t)home, .national_ok = national_ok,
                      .idd = (const uint8_t *)idd, .idd_len = (size_t)idd_len,
                      .dcc = (const uint8_t *)dcc, .dcc_len = (size_t)dcc_len};
    Py_ssize_t deferred = 0;
    Py_BEGIN_ALLOW_THREADS;
    uint8_t *c = codes.buf;
    uint8_t *o = out.buf;
    uint16_t *nd = need.buf;
    Hasher hasher = {.pending = 0};
    for (Py_ssize_t i = 0; i < n; i++, o += width) {
        size_t len;
        const uint8_t *value = column_value(&col, i, &len);
        nd[i] = 0;
        size_t start = 0, end = len;
        while (start < end && ascii_space(value[start])) start++;
        while (end > start && ascii_space(value[end - 1])) end--;
        if (start == end) {
            c[i] = (uint8_t)code_empty;
            continue;
        }
        uint8_t e164[24];
        size_t e164_len = 0;
        int need_cc = 0;
        int rule = phone_rules(&t, &d, value + start, end - start, e164, &e164_len, &need_cc);
        if (rule == 0) {
            c[i] = (uint8_t)code_hashed;
            if (mode) {
                o[0] = (uint8_t)e164_len;
                memcpy(o + 1, e164, e164_len);
            } else {
                hasher_add(&hasher, e164, e164_len, o);
            }
        } else if (rule == 1) {
            c[i] = (uint8_t)code_invalid;
        } else if (rule == 2) {
            c[i] = (uint8_t)code_nan;
        } else {
            c[i] = (uint8_t)rule;
            nd[i] = (uint16_t)need_cc;
            deferred++;
        }
    }
    hasher_flush(&hasher);
    Py_END_ALLOW_THREADS;
    result = PyLong_FromSsize_t(deferred);
done:
    if (have_need) PyBuffer_Release(&need);
    if (have_out) PyBuffer_Release(&out);
    if (have_codes) PyBuffer_Release(&codes);
    if (have_col) column_release(&col);
    for (int i = 0; i < got; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* ------------------------------------------------------------------- partitions ----------- */

static inline int nibble(uint8_t c) {
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* The accepted rows of a (n, 64) hex-digest matrix, grouped by partition (the top six bits of
 * the digest's first byte) in row order: one counting sort, for staging. */
static PyObject *py_partition_order(PyObject *self, PyObject *args) {
    PyObject *matrix_obj, *accepted_obj, *order_obj, *counts_obj;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOnOO", &matrix_obj, &accepted_obj, &n, &order_obj,
                          &counts_obj))
        return NULL;
    if (n < 0 || n > PY_SSIZE_T_MAX / 64) {
        PyErr_SetString(PyExc_ValueError, "bad row count");
        return NULL;
    }
    Py_buffer matrix, accepted, order, counts;
    if (PyObject_GetBuffer(matrix_obj, &matrix, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(accepted_obj, &accepted, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&matrix);
        return NULL;
    }
    if (matrix.len < 64 * n || accepted.len < n) {
        PyBuffer_Release(&accepted);
        PyBuffer_Release(&matrix);
        PyErr_SetString(PyExc_ValueError, "matrix or mask shorter than n rows");
        return NULL;
    }
    if (writable(order_obj, &order, 8 * n, "order") < 0) {
        PyBuffer_Release(&accepted);
        PyBuffer_Release(&matrix);
        return NULL;
    }
    if (writable(counts_obj, &counts, 8 * 64, "counts") < 0) {
        PyBuffer_Release(&order);
        PyBuffer_Release(&accepted);
        PyBuffer_Release(&matrix);
        return NULL;
    }
    Py_ssize_t kept = 0;
    Py_BEGIN_ALLOW_THREADS;
    const uint8_t *m = matrix.buf, *ok = accepted.buf;
    int64_t *out = order.buf, *count = counts.buf;
    int64_t start[64];
    memset(count, 0, 8 * 64);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ok[i]) count[(nibble(m[64 * i]) << 2 | nibble(m[64 * i + 1]) >> 2) & 63]++;
    }
    int64_t at = 0;
    for (int k = 0; k < 64; k++) {
        start[k] = at;
        at += count[k];
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!ok[i]) continue;
        int64_t pos = start[(nibble(m[64 * i]) << 2 | nibble(m[64 * i + 1]) >> 2) & 63]++;
        if (pos < n) out[pos] = i; /* inputs changed under us cannot write past the end */
    }
    kept = (Py_ssize_t)(at < n ? at : n);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&counts);
    PyBuffer_Release(&order);
    PyBuffer_Release(&accepted);
    PyBuffer_Release(&matrix);
    return PyLong_FromSsize_t(kept);
}

/* Eight hex digits (lowercase or uppercase) → their 32-bit value, by word arithmetic: the low
 * nibble plus 9 when bit 6 is set is each digit's value; three steps pack them together. */
static inline uint64_t pack8(const uint8_t *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    x = __builtin_bswap64(x);
    x = (x & 0x0F0F0F0F0F0F0F0FULL) + 9 * ((x >> 6) & 0x0101010101010101ULL);
    x = (x | (x >> 4)) & 0x00FF00FF00FF00FFULL;
    x = (x | (x >> 8)) & 0x0000FFFF0000FFFFULL;
    return (x | (x >> 16)) & 0xFFFFFFFFULL;
}

/* The 16 hex digits at column `col` of each fixed-width record as a u64: the sort key of
 * deduplication (encode._sort_key), one pass instead of numpy's several. */
static PyObject *py_hex_keys(PyObject *self, PyObject *args) {
    PyObject *records_obj, *out_obj;
    Py_ssize_t n, width, col;
    if (!PyArg_ParseTuple(args, "OnnnO", &records_obj, &n, &width, &col, &out_obj)) return NULL;
    if (n < 0 || width < 16 || col < 0 || col > width - 16 || n > PY_SSIZE_T_MAX / width) {
        PyErr_SetString(PyExc_ValueError, "bad record shape");
        return NULL;
    }
    Py_buffer records, out;
    if (PyObject_GetBuffer(records_obj, &records, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (records.len < n * width) {
        PyBuffer_Release(&records);
        PyErr_SetString(PyExc_ValueError, "records shorter than n rows");
        return NULL;
    }
    if (writable(out_obj, &out, 8 * n, "keys") < 0) {
        PyBuffer_Release(&records);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS;
    const uint8_t *r = (const uint8_t *)records.buf + col;
    uint64_t *k = out.buf;
    for (Py_ssize_t i = 0; i < n; i++, r += width) k[i] = pack8(r) << 32 | pack8(r + 8);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&out);
    PyBuffer_Release(&records);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------- module --------------- */

static PyObject *py_accelerated(PyObject *self, PyObject *unused) {
    return PyBool_FromLong(compress != compress_portable);
}

static PyObject *py_use_portable(PyObject *self, PyObject *arg) {
    int portable = PyObject_IsTrue(arg);
    if (portable < 0) return NULL;
#ifdef SAS_X86
    compress = (!portable && cpu_has_shani()) ? compress_shani : compress_portable;
#else
    compress = compress_portable;
#endif
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"sha256_hex", py_sha256_hex, METH_VARARGS,
     "sha256_hex(views, validity, data_buffers, offset, n, out): SHA-256 hex of n string views into out "
     "(n*64 bytes)."},
    {"emails", py_emails, METH_VARARGS,
     "emails(views, validity, data_buffers, offset, n, gmail_canonical, status, out) -> deferred: the "
     "email rules and SHA-256 for ASCII values; status 255 marks values left to polars."},
    {"phones", py_phones, METH_VARARGS,
     "phones(views, validity, data_buffers, offset, n, tables, home, national_ok, idd, dcc, hashed, "
     "empty, invalid, not_a_number, mode, codes, out, need) -> deferred: libphonenumber's rules for plain "
     "phone numbers (see phones_native.py); mode 0 writes digests, mode 1 E.164 text."},
    {"partition_order", py_partition_order, METH_VARARGS,
     "partition_order(matrix, accepted, n, order, counts) -> kept: accepted rows grouped by "
     "partition (top six bits of the first digest byte), stable."},
    {"hex_keys", py_hex_keys, METH_VARARGS,
     "hex_keys(records, n, width, col, out): the 16 hex digits at column col of each record as "
     "a u64."},
    {"accelerated", py_accelerated, METH_NOARGS, "True when the CPU's SHA instructions are used."},
    {"use_portable", py_use_portable, METH_O,
     "use_portable(flag): force the portable SHA-256 (for tests), or go back to the fastest."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native",
                                    "Hot loops of the identifier pipeline (see _native.c).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__native(void) {
    tables_init();
#ifdef SAS_X86
    if (cpu_has_shani()) compress = compress_shani;
#endif
    return PyModule_Create(&module);
}
