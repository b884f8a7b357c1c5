/* libphonenumber's parse + is_valid_number for the plain forms: an optional leading '+', ASCII
 * digits and the separators " -.()/". The national-number patterns of every region come in as
 * DFAs over digits (built from the installed phonenumbers' metadata by
 * identifiers/phones/native.py), so validity is one table walk per pattern. A national number
 * that starts with the default region's calling code ("1-201-555-0123" in the US) is split as
 * libphonenumber splits it (dcc_split). Whatever is not decided exactly here (letters,
 * extensions, other characters, short or odd numbers, a national prefix that is not a plain
 * digit string) is marked P_DEFER and decided by the polars path and libphonenumber; P_NEED
 * asks for a calling code's metadata. */
#include "native.h"

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
    R_IDD_DFA, /* an international prefix that is not a digit string, as a DFA (or -1) */
    R_TOO_LONG, /* bit n: _test_number_length of n digits is TOO_LONG (n < 31) */
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

/* The national prefix at the start of s as re.match finds it: its length, -1 when there is
 * none, -2 when only the polars path can tell. The prefix regex matches the first of its
 * literals that starts the number (backtracking order); a regex that is not a short list of
 * literals is only followed where its DFA says it cannot match at all. */
static int np_match(const PhoneTables *t, int32_t region, const uint8_t *s, size_t n) {
    const int32_t *r = t->regions + R_FIELDS * region;
    if (r[R_NP_MODE] == NP_LITERALS) {
        const uint8_t *slot = t->np_text + (size_t)NP_SLOTS * 8 * (size_t)region;
        for (int k = 0; k < NP_SLOTS && slot[8 * k] != 0xFF; k++) {
            size_t len = slot[8 * k];
            if (len <= n && memcmp(s, slot + 8 * k + 1, len) == 0) return (int)len;
        }
        return -1;
    }
    if (r[R_NP_MODE] == NP_NONE) return -1;
    if (r[R_NP_MODE] != NP_REGEX || r[R_NP_DFA] < 0 || dfa_prefix(t, r[R_NP_DFA], s, n)) return -2;
    return -1;
}

/* _maybe_strip_national_prefix_carrier_code (no transform rule: those are deferred): the
 * number without its national prefix in *s, *n, unless the number matched the general
 * description and would not any more. 0, or -1 to defer. */
static int np_strip(const PhoneTables *t, int32_t region, const uint8_t **s, size_t *n) {
    if (*n == 0) return 0; /* its early return */
    int np = np_match(t, region, *s, *n);
    if (np == -2) return -1;
    if (np < 0) return 0;
    const int32_t *r = t->regions + R_FIELDS * region;
    const uint8_t *cand = *s + np;
    size_t cn = *n - (size_t)np;
    if (dfa_full(t, r[R_GENERAL], *s, *n) && !dfa_full(t, r[R_GENERAL], cand, cn)) return 0;
    *s = cand;
    *n = cn;
    return 0;
}

typedef struct {
    int32_t home;  /* default region index; -1: a region the tables lack, every row deferred */
    int national_ok;
    const uint8_t *idd; /* the default region's international prefix, plain digits */
    size_t idd_len;
    const uint8_t *dcc; /* the default calling code as digits */
    size_t dcc_len;
} PhoneDefault;

/* _maybe_extract_country_code's last branch, for national digits that start with the default
 * calling code: the rest, national prefix stripped, becomes the national number of that code
 * when the whole did not match the default region's general description and the rest does, or
 * when the whole is too long for the default region. 1 (taken: the rest in *raw, *raw_n), 0
 * (a national number of the default region after all) or -1 (defer). */
static int dcc_split(const PhoneTables *t, const PhoneDefault *d, const uint8_t *digits,
                     size_t nd, const uint8_t **raw, size_t *raw_n) {
    /* Past the too-long table (lengths below 31; no real number is near it): polars decides. */
    if (nd > 30) return -1;
    const int32_t *h = t->regions + R_FIELDS * d->home;
    const uint8_t *rest = digits + d->dcc_len;
    size_t rn = nd - d->dcc_len;
    if (np_strip(t, d->home, &rest, &rn) < 0) return -1;
    int better = !dfa_full(t, h[R_GENERAL], digits, nd) && dfa_full(t, h[R_GENERAL], rest, rn);
    int too_long = ((uint32_t)h[R_TOO_LONG] >> nd) & 1;
    if (!better && !too_long) return 0;
    *raw = rest;
    *raw_n = rn;
    return 1;
}

/* One stripped value → P_* / 0 (valid: E.164 digits in e164, length in *e164_len) / 1
 * (invalid_number) / 2 (not_a_number). *need gets the calling code whose metadata is missing (P_NEED). */
static int phone_rules(const PhoneTables *t, const PhoneDefault *d, const uint8_t *v, size_t m,
                       uint8_t *e164, size_t *e164_len, int *need) {
    /* 64 characters may be a pre-hashed digest, which the rules check before anything. */
    if (m > PHONE_MAX_INPUT || m == 64 || d->home < 0) return P_DEFER;
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
        } else {
            /* An international prefix given as a pattern: national only where it cannot
             * match (one that might is left to the polars path, as a plus would be). */
            int32_t idd_dfa = t->regions[R_FIELDS * d->home + R_IDD_DFA];
            if (!d->national_ok || (idd_dfa >= 0 && dfa_prefix(t, idd_dfa, digits, nd)))
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
        region = d->home;
        cc = t->regions[R_FIELDS * region + R_CC];
        if (t->cc_state[cc] != CC_READY) return P_DEFER; /* its code's tables: checked */
        raw = digits;
        raw_n = nd;
        if (nd >= d->dcc_len && memcmp(digits, d->dcc, d->dcc_len) == 0) {
            int taken = dcc_split(t, d, digits, nd, &raw, &raw_n);
            if (taken < 0) return P_DEFER;
            /* Taken: parse goes on as after a '+', in the metadata of the code's main region
             * (US for a CA default: parse switches region_code_for_country_code's way). */
            if (taken) region = t->cc_list[t->cc_first[cc]];
        }
    }
    /* _maybe_strip_national_prefix_carrier_code, then the length test parse applies. */
    const uint8_t *nsn = raw, *cand = raw;
    size_t n = raw_n, cn = raw_n;
    if (np_strip(t, region, &cand, &cn) < 0) return P_DEFER;
    if (cn < 32 && ((uint32_t)t->regions[R_FIELDS * region + R_STRIP] >> cn) & 1) {
        nsn = cand;
        n = cn;
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
        for (int k = R_GENERAL; k <= R_IDD_DFA; k++) {
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

/* One default region's record in the `defaults` buffer (DEFAULT_BYTES each): int32 home, then
 * national_ok, idd_len, dcc_len, a pad byte, the IDD (8 bytes) and the calling code (4 bytes). */
#define DEFAULT_BYTES 24
#define MAX_DEFAULTS 4096

/* The defaults buffer as PhoneDefault records pointing into it; 0, or -1 with ValueError. */
static int defaults_open(const Py_buffer *b, const PhoneTables *t, PhoneDefault *out,
                         Py_ssize_t *count) {
    Py_ssize_t k = b->len / DEFAULT_BYTES;
    if (k < 1 || k > MAX_DEFAULTS || b->len != k * DEFAULT_BYTES) {
        PyErr_SetString(PyExc_ValueError, "defaults must hold 1..4096 records of 24 bytes");
        return -1;
    }
    const uint8_t *rec = b->buf;
    for (Py_ssize_t i = 0; i < k; i++, rec += DEFAULT_BYTES) {
        int32_t home;
        memcpy(&home, rec, 4);
        if (home < -1 || home >= t->nregions || rec[4] > 1 || rec[5] > 8 || rec[6] < 1 ||
            rec[6] > 3) {
            PyErr_SetString(PyExc_ValueError, "a default region's record is out of range");
            return -1;
        }
        out[i] = (PhoneDefault){.home = home, .national_ok = rec[4], .idd = rec + 8,
                                .idd_len = rec[5], .dcc = rec + 16, .dcc_len = rec[6]};
    }
    *count = k;
    return 0;
}

/* Every row's default region id is below the number of records (an empty buffer: all 0). */
static int row_defaults_check(const Py_buffer *b, Py_ssize_t n, Py_ssize_t k) {
    if (b->len == 0) return 0;
    if (b->len != 2 * n || sas_check_aligned(b->buf, 2, "row defaults") < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "row defaults must be empty or n uint16 values");
        return -1;
    }
    const uint16_t *ids = b->buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ids[i] >= k) {
            PyErr_SetString(PyExc_ValueError, "a row's default region id is out of range");
            return -1;
        }
    }
    return 0;
}

/* The 8 table buffers as PhoneTables, sizes and indexes checked; 0, or -1 with an error. */
static int tables_open(const Py_buffer *b, PhoneTables *t) {
    *t = (PhoneTables){
        .trans = b[0].buf, .states = b[0].len / 40, .accept = b[1].buf,
        .regions = b[2].buf, .nregions = b[2].len / (4 * R_FIELDS), .np_text = b[3].buf,
        .cc_first = b[4].buf, .cc_count = b[5].buf, .cc_list = b[6].buf, .cc_state = b[7].buf,
    };
    if (b[1].len < t->states || b[3].len < NP_SLOTS * 8 * t->nregions || b[4].len < 4000 ||
        b[5].len < 4000 || b[7].len < 1000 || t->nregions < 1) {
        PyErr_SetString(PyExc_ValueError, "phone tables have the wrong sizes");
        return -1;
    }
    /* The int32 tables are read as such. */
    if (sas_check_aligned(b[0].buf, 4, "transitions") < 0 ||
        sas_check_aligned(b[2].buf, 4, "regions") < 0 ||
        sas_check_aligned(b[4].buf, 4, "cc_first") < 0 ||
        sas_check_aligned(b[5].buf, 4, "cc_count") < 0 ||
        sas_check_aligned(b[6].buf, 4, "cc_list") < 0)
        return -1;
    return tables_check(t, b[6].len / 4);
}

/* The kernel's loop over rows (no GIL): status codes, E.164 text or digests, needed codes. */
static Py_ssize_t phones_loop(const PhoneTables *t, const PhoneDefault *defaults,
                              const uint16_t *row_default, const Column *col, Py_ssize_t n,
                              const uint8_t status_codes[4], int mode, uint8_t *c, uint8_t *o,
                              uint16_t *nd) {
    size_t width = mode ? 24 : 64;
    Py_ssize_t deferred = 0;
    Hasher hasher = {.pending = 0};
    for (Py_ssize_t i = 0; i < n; i++, o += width) {
        size_t len;
        const uint8_t *value = column_value(col, i, &len);
        nd[i] = 0;
        size_t start = 0, end = len;
        while (start < end && ascii_space(value[start])) start++;
        while (end > start && ascii_space(value[end - 1])) end--;
        if (start == end) {
            c[i] = status_codes[1];
            continue;
        }
        const PhoneDefault *d = defaults + (row_default ? row_default[i] : 0);
        uint8_t e164[24];
        size_t e164_len = 0;
        int need_cc = 0;
        int rule = phone_rules(t, d, value + start, end - start, e164, &e164_len, &need_cc);
        if (rule == 0) {
            c[i] = status_codes[0];
            if (mode) {
                o[0] = (uint8_t)e164_len;
                memcpy(o + 1, e164, e164_len);
            } else {
                hasher_add(&hasher, e164, e164_len, o);
            }
        } else if (rule == 1 || rule == 2) {
            c[i] = status_codes[rule + 1];
        } else {
            c[i] = (uint8_t)rule;
            nd[i] = (uint16_t)need_cc;
            deferred++;
        }
    }
    sas_hasher_flush(&hasher);
    return deferred;
}

PyObject *sas_py_phones(PyObject *self, PyObject *args) {
    PyObject *views, *validity, *data, *tables, *codes_obj, *out_obj, *need_obj;
    PyObject *defaults_obj, *rows_obj;
    Py_ssize_t offset, n;
    int mode;
    int code_hashed, code_empty, code_invalid, code_nan;
    if (!PyArg_ParseTuple(args, "OOOnnOOOiiiiiOOO", &views, &validity, &data, &offset, &n,
                          &tables, &defaults_obj, &rows_obj, &code_hashed, &code_empty,
                          &code_invalid, &code_nan, &mode, &codes_obj, &out_obj, &need_obj))
        return NULL;
    /* The four codes are written as bytes next to P_NEED and P_DEFER: they must not be those. */
    if ((mode != 0 && mode != 1) || code_hashed < 0 || code_hashed >= P_NEED || code_empty < 0 ||
        code_empty >= P_NEED || code_invalid < 0 || code_invalid >= P_NEED || code_nan < 0 ||
        code_nan >= P_NEED) {
        PyErr_SetString(PyExc_ValueError, "mode must be 0 or 1 and the status codes 0..253");
        return NULL;
    }
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
    Py_buffer codes, out, need, defaults_buf, rows_buf;
    int have_col = 0, have_codes = 0, have_out = 0, have_need = 0, have_def = 0, have_rows = 0;
    PhoneDefault *defaults = NULL;
    Py_ssize_t ndefaults = 0;
    PyObject *result = NULL;
    PhoneTables t;
    if (got < 8 || tables_open(b, &t) < 0) goto done;
    if (PyObject_GetBuffer(defaults_obj, &defaults_buf, PyBUF_SIMPLE) < 0) goto done;
    have_def = 1;
    defaults = PyMem_Malloc(sizeof(PhoneDefault) * (size_t)(defaults_buf.len / DEFAULT_BYTES + 1));
    if (defaults == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (defaults_open(&defaults_buf, &t, defaults, &ndefaults) < 0) goto done;
    if (PyObject_GetBuffer(rows_obj, &rows_buf, PyBUF_SIMPLE) < 0) goto done;
    have_rows = 1;
    if (n < 0 || row_defaults_check(&rows_buf, n, ndefaults) < 0) goto done;
    if (sas_column_open(&col, views, validity, data, offset, n) < 0) goto done;
    have_col = 1;
    if (sas_writable(codes_obj, &codes, n, 1, "codes") < 0) goto done;
    have_codes = 1;
    if (sas_writable(out_obj, &out, (Py_ssize_t)width * n, 1, "output") < 0) goto done;
    have_out = 1;
    if (sas_writable(need_obj, &need, 2 * n, 2, "need") < 0) goto done;
    have_need = 1;
    const uint8_t status_codes[4] = {(uint8_t)code_hashed, (uint8_t)code_empty,
                                     (uint8_t)code_invalid, (uint8_t)code_nan};
    const uint16_t *row_default = rows_buf.len ? rows_buf.buf : NULL;
    Py_ssize_t deferred;
    Py_BEGIN_ALLOW_THREADS;
    deferred = phones_loop(&t, defaults, row_default, &col, n, status_codes, mode, codes.buf,
                           out.buf, need.buf);
    Py_END_ALLOW_THREADS;
    result = PyLong_FromSsize_t(deferred);
done:
    PyMem_Free(defaults);
    if (have_need) PyBuffer_Release(&need);
    if (have_out) PyBuffer_Release(&out);
    if (have_codes) PyBuffer_Release(&codes);
    if (have_col) sas_column_release(&col);
    if (have_rows) PyBuffer_Release(&rows_buf);
    if (have_def) PyBuffer_Release(&defaults_buf);
    for (int i = 0; i < got; i++) PyBuffer_Release(&b[i]);
    return result;
}
