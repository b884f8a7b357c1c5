/* Staging and deduplication helpers over hex-digest matrices: partition_order (a counting
 * sort by partition) and hex_keys (sort keys). */
#include "native.h"

static inline int nibble(uint8_t c) {
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* The accepted rows of a (n, 64) hex-digest matrix, grouped by partition (the top six bits of
 * the digest's first byte) in row order: one counting sort, for staging. */
PyObject *sas_py_partition_order(PyObject *self, PyObject *args) {
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
    if (sas_writable(order_obj, &order, 8 * n, "order") < 0) {
        PyBuffer_Release(&accepted);
        PyBuffer_Release(&matrix);
        return NULL;
    }
    if (sas_writable(counts_obj, &counts, 8 * 64, "counts") < 0) {
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
PyObject *sas_py_hex_keys(PyObject *self, PyObject *args) {
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
    if (sas_writable(out_obj, &out, 8 * n, "keys") < 0) {
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
