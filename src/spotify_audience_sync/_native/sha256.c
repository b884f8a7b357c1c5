/* SHA-256 (FIPS 180-4): a portable block function, one with the CPU's SHA instructions, and
 * the sha256_hex kernel. Which block function runs is chosen once, at import. */
#include "native.h"


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
SAS_SHANI void sas_compress_shani(uint32_t state[8], const uint8_t *data, size_t blocks) {
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
SAS_SHANI void sas_shani_x2_hex(const uint8_t *b0, const uint8_t *b1, uint8_t *out0,
                                uint8_t *out1) {
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

sas_compress_fn sas_compress = compress_portable;

static const char HEX[] = "0123456789abcdef";

/* SHA-256 of data[0..len) as 64 lowercase hex characters at out. */
void sas_sha256_hex(const uint8_t *data, size_t len, uint8_t *out) {
    uint32_t state[8];
    memcpy(state, H256, sizeof state);
    size_t full = len / 64;
    if (full) sas_compress(state, data, full);
    uint8_t tail[128];
    size_t rest = len - full * 64;
    memcpy(tail, data + full * 64, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
    memset(tail + rest + 1, 0, tail_len - rest - 1);
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    sas_compress(state, tail, tail_len / 64);
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 4; j++) {
            uint8_t byte = (uint8_t)(state[i] >> (24 - 8 * j));
            out[8 * i + 2 * j] = (uint8_t)HEX[byte >> 4];
            out[8 * i + 2 * j + 1] = (uint8_t)HEX[byte & 15];
        }
    }
}



void sas_hasher_flush(Hasher *h) {
    if (!h->pending) return;
    uint32_t state[8];
    memcpy(state, H256, sizeof state);
    sas_compress(state, h->block, 1);
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 4; j++) {
            uint8_t byte = (uint8_t)(state[i] >> (24 - 8 * j));
            h->out[8 * i + 2 * j] = (uint8_t)HEX[byte >> 4];
            h->out[8 * i + 2 * j + 1] = (uint8_t)HEX[byte & 15];
        }
    }
    h->pending = 0;
}


PyObject *sas_py_sha256_hex(PyObject *self, PyObject *args) {
    PyObject *views, *validity, *data, *out_obj;
    Py_ssize_t offset, n;
    if (!PyArg_ParseTuple(args, "OOOnnO", &views, &validity, &data, &offset, &n, &out_obj))
        return NULL;
    Column col;
    if (sas_column_open(&col, views, validity, data, offset, n) < 0) return NULL;
    Py_buffer out;
    if (sas_writable(out_obj, &out, 64 * n, 1, "output") < 0) {
        sas_column_release(&col);
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
    sas_hasher_flush(&hasher);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&out);
    sas_column_release(&col);
    Py_RETURN_NONE;
}

PyObject *sas_py_accelerated(PyObject *self, PyObject *unused) {
    return PyBool_FromLong(sas_compress != compress_portable);
}

PyObject *sas_py_use_portable(PyObject *self, PyObject *arg) {
    int portable = PyObject_IsTrue(arg);
    if (portable < 0) return NULL;
    sas_scan_portable = portable;
#ifdef SAS_X86
    sas_compress = (!portable && cpu_has_shani()) ? sas_compress_shani : compress_portable;
#else
    sas_compress = compress_portable;
#endif
    Py_RETURN_NONE;
}

/* At import: the fastest block function this CPU runs. */
void sas_sha256_init(void) {
#ifdef SAS_X86
    if (cpu_has_shani()) sas_compress = sas_compress_shani;
#endif
}
