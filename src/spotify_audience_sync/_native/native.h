/*
 * Hot loops of the identifier pipeline, in C: SHA-256 of many short strings, the email rules
 * and libphonenumber's rules for plain phone numbers. One extension module,
 * spotify_audience_sync._native, built from the .c files beside this header:
 *
 *   sha256.c   SHA-256 (portable and SHA-NI), the sha256_hex kernel
 *   email.c    the email rules, the emails kernel
 *   phone.c    the phone DFAs and rules, the phones kernel
 *   staging.c  partition_order, hex_keys and unique_sorted, for staging and deduplication
 *   fields.c   ragged_scan, the CSV field-count scan (rows shorter or longer than the header)
 *   module.c   Arrow string views and buffer checks shared by the kernels, the method table
 *
 * Every argument is checked where Python hands it over (sizes, alignment of typed buffers, the
 * characters that pick a table slot or a shift), with ValueError: the kernels read and write
 * only what those checks allow, whatever a direct call passes.
 *
 * Why: polars-hash spends ~340 ns a value (hashing plus hex formatting plus a String per row),
 * the email rules are four polars passes (strip, lowercase, regex, hex check), ~250 ns a value,
 * and the vectorized phone rules ~1.5 us. Here each value is read once, straight out of polars'
 * Arrow string views, hashed with the CPU's SHA instructions when it has them, and written as
 * 64 hex characters into a matrix the encoder uses as is. The GIL is released, so the
 * pipeline's worker threads run in parallel.
 *
 * Pure data logic, like identifiers.py: no I/O. Anything this code cannot decide exactly (an
 * email with a character past U+017F or one a repair may touch, a phone number with letters or
 * an unusual prefix) is marked DEFER and decided by the polars path, which stays the
 * definition.
 * tests/identifiers/test_native.py and tests/identifiers/test_phones_differential.py hold both
 * to the same answers.
 *
 * The helpers every row goes through (column_value, hasher_add) are static inline here, so
 * splitting the module into files costs no call per value. Shared symbols carry the sas_
 * prefix and hidden visibility: only PyInit__native is exported.
 */
#ifndef SAS_NATIVE_H
#define SAS_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "little-endian only (Arrow's buffers and the word tricks); polars does the work elsewhere"
#endif
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define SAS_X86 1
#define SAS_SHANI __attribute__((target("sha,sse4.1,ssse3")))
#endif

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility push(hidden)
#endif

/* ---------------------------------------------------------------- SHA-256 (sha256.c) ------ */

typedef void (*sas_compress_fn)(uint32_t state[8], const uint8_t *data, size_t blocks);
/* The block function in use: portable, or SHA-NI when the CPU has it (chosen at import). */
extern sas_compress_fn sas_compress;
#ifdef SAS_X86
SAS_SHANI void sas_compress_shani(uint32_t state[8], const uint8_t *data, size_t blocks);
SAS_SHANI void sas_shani_x2_hex(const uint8_t *b0, const uint8_t *b1, uint8_t *out0,
                                uint8_t *out1);
#endif
void sas_sha256_hex(const uint8_t *data, size_t len, uint8_t *out);
void sas_sha256_init(void);

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
    if (len <= 55 && sas_compress == sas_compress_shani) {
        if (!h->pending) {
            pad_one(data, len, h->block);
            h->out = out;
            h->pending = 1;
            return;
        }
        uint8_t block[64];
        pad_one(data, len, block);
        sas_shani_x2_hex(h->block, block, h->out, out);
        h->pending = 0;
        return;
    }
#endif
    sas_sha256_hex(data, len, out);
}

void sas_hasher_flush(Hasher *h);

/* ------------------------------------------------------ Arrow string views (module.c) ----- */

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

/* Fill col from (views, validity or None, data buffers, offset, n); 0 on success, -1 with an
 * exception set. Every non-null view is checked against the buffers here, once. */
int sas_column_open(Column *col, PyObject *views, PyObject *validity, PyObject *data,
                    Py_ssize_t offset, Py_ssize_t n);
void sas_column_release(Column *col);

static inline int column_null(const Column *col, Py_ssize_t i) {
    if (col->validity.obj == NULL) return 0;
    Py_ssize_t bit = col->offset + i;
    return !((((const uint8_t *)col->validity.buf)[bit >> 3] >> (bit & 7)) & 1);
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

/* A writable buffer of at least `need` bytes that starts on an `align`-byte boundary (the
 * kernels store int64/uint16 through some: a misaligned one, say a memoryview sliced at an
 * odd offset, would be undefined behaviour); 0, or -1 with ValueError. */
int sas_writable(PyObject *obj, Py_buffer *out, Py_ssize_t need, Py_ssize_t align,
                 const char *what);
/* 0 when buf starts on an `align`-byte boundary, else -1 with ValueError naming `what`. */
int sas_check_aligned(const void *buf, Py_ssize_t align, const char *what);

/* Rust's char::is_whitespace restricted to ASCII: what polars' strip_chars() strips. */
static inline int ascii_space(uint8_t c) { return c == ' ' || (c >= 0x09 && c <= 0x0d); }

/* ------------------------------------------------------------------ the kernels ----------- */

void sas_email_init(void);
PyObject *sas_py_sha256_hex(PyObject *self, PyObject *args);
PyObject *sas_py_accelerated(PyObject *self, PyObject *unused);
PyObject *sas_py_use_portable(PyObject *self, PyObject *arg);
PyObject *sas_py_emails(PyObject *self, PyObject *args);
PyObject *sas_py_phones(PyObject *self, PyObject *args);
PyObject *sas_py_partition_order(PyObject *self, PyObject *args);
PyObject *sas_py_hex_keys(PyObject *self, PyObject *args);
PyObject *sas_py_unique_sorted(PyObject *self, PyObject *args);
PyObject *sas_py_ragged_scan(PyObject *self, PyObject *args);
/* Set by use_portable(): the field-count scan builds its masks in plain C (fields.c). */
extern int sas_scan_portable;

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

#endif
