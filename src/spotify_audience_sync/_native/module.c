/* The module: the Arrow string views and writable buffers every kernel takes (checked here,
 * before any kernel reads them), the method table and PyInit. */
#include "native.h"

void sas_column_release(Column *col) {
    if (col->views.obj) PyBuffer_Release(&col->views);
    if (col->validity.obj) PyBuffer_Release(&col->validity);
    for (Py_ssize_t i = 0; i < col->ndata; i++) {
        if (col->data[i].obj) PyBuffer_Release(&col->data[i]);
    }
    PyMem_Free(col->data);
    col->data = NULL;
    col->ndata = 0;
}

/* Fill col from (views, validity or None, data buffers, offset, n): see native.h. */
int sas_column_open(Column *col, PyObject *views, PyObject *validity, PyObject *data,
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
        sas_column_release(col);
        return -1;
    }
    if (validity != Py_None) {
        if (PyObject_GetBuffer(validity, &col->validity, PyBUF_SIMPLE) < 0) {
            sas_column_release(col);
            return -1;
        }
        if (col->validity.len < (offset + n + 7) / 8) {
            PyErr_SetString(PyExc_ValueError, "the validity bitmap is too short");
            sas_column_release(col);
            return -1;
        }
    }
    PyObject *seq = PySequence_Fast(data, "data buffers must be a sequence");
    if (seq == NULL) {
        sas_column_release(col);
        return -1;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    col->data = PyMem_Calloc(count ? (size_t)count : 1, sizeof(Py_buffer));
    if (col->data == NULL) {
        Py_DECREF(seq);
        sas_column_release(col);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &col->data[i], PyBUF_SIMPLE) <
            0) {
            col->ndata = i;
            Py_DECREF(seq);
            sas_column_release(col);
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
            sas_column_release(col);
            return -1;
        }
    }
    return 0;
}

int sas_check_aligned(const void *buf, Py_ssize_t align, const char *what) {
    if ((uintptr_t)buf % (uintptr_t)align == 0) return 0;
    PyErr_Format(PyExc_ValueError, "%s buffer must start on a %zd-byte boundary", what, align);
    return -1;
}

int sas_writable(PyObject *obj, Py_buffer *out, Py_ssize_t need, Py_ssize_t align,
                 const char *what) {
    if (PyObject_GetBuffer(obj, out, PyBUF_WRITABLE) < 0) return -1;
    if (out->len < need) {
        PyErr_Format(PyExc_ValueError, "%s buffer too small: %zd bytes, need %zd", what, out->len,
                     need);
        PyBuffer_Release(out);
        return -1;
    }
    if (sas_check_aligned(out->buf, align, what) < 0) {
        PyBuffer_Release(out);
        return -1;
    }
    return 0;
}

static PyMethodDef methods[] = {
    {"sha256_hex", sas_py_sha256_hex, METH_VARARGS,
     "sha256_hex(views, validity, data_buffers, offset, n, out): SHA-256 hex of n string views into out "
     "(n*64 bytes)."},
    {"emails", sas_py_emails, METH_VARARGS,
     "emails(views, validity, data_buffers, offset, n, gmail_canonical, status, out) -> deferred: the "
     "email rules and SHA-256 for ASCII values; status 255 marks values left to polars."},
    {"phones", sas_py_phones, METH_VARARGS,
     "phones(views, validity, data_buffers, offset, n, tables, defaults, row_defaults, hashed, empty, "
     "invalid, not_a_number, mode, codes, out, need) -> deferred: libphonenumber's rules for plain "
     "phone numbers (see identifiers/phones/native.py); mode 0 writes digests, mode 1 E.164 text."},
    {"partition_order", sas_py_partition_order, METH_VARARGS,
     "partition_order(matrix, accepted, n, order, counts) -> kept: accepted rows grouped by "
     "partition (top six bits of the first digest byte), stable."},
    {"hex_keys", sas_py_hex_keys, METH_VARARGS,
     "hex_keys(records, n, width, col, out): the 16 hex digits at column col of each record as "
     "a u64."},
    {"unique_sorted", sas_py_unique_sorted, METH_VARARGS,
     "unique_sorted(records, n, width, packed, bits, out) -> kept, or -1: the records in the "
     "order of the sorted key|index words packed, those equal to the one kept before them "
     "dropped, into out; -1 when two different records share a key (nothing decided)."},
    {"ragged_scan", sas_py_ragged_scan, METH_VARARGS,
     "ragged_scan(chunk, delimiter, width) -> (records, short, first_long_index, "
     "first_long_fields, first_long_start): CSV records with fewer fields than width, and the "
     "first with more (-1s when none)."},
    {"accelerated", sas_py_accelerated, METH_NOARGS, "True when the CPU's SHA instructions are used."},
    {"use_portable", sas_py_use_portable, METH_O,
     "use_portable(flag): force the portable SHA-256 and field-count scan (for tests), or go "
     "back to the fastest."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native",
                                    "Hot loops of the identifier pipeline (see _native/native.h).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__native(void) {
    sas_email_init();
    sas_sha256_init();
    return PyModule_Create(&module);
}
