/* The email rules for ASCII and Latin values, and the emails kernel: normalize, validate and
 * hash each value; anything else is deferred to the polars rules. So is every value a repair
 * may touch (identifiers/emails.py: display names, mailto:, quotes, lists, invisible and
 * compatibility characters, a trailing dot): a character that marks one defers the value,
 * which keeps this code to the plain case, nearly every value. */
#include "native.h"

/* Status codes, as identifiers.CODES numbers them. */
enum { E_HASHED = 0, E_PREHASHED = 1, E_EMPTY = 2, E_MALFORMED = 3, E_DEFER = 255 };

/* The longest value decided here; longer ones (never real emails) go to polars. */
#define EMAIL_MAX 320

/* Byte classes for the ASCII pass: a character that defers the value (control, or one an
 * address holds only quoted or in a list: with whitespace, what emails.UNUSUAL matches), a
 * hex digit, a byte of a multi-byte character, whitespace (see not_a_list). LOWER is ASCII
 * lowercasing. Filled at import. */
enum { C_BANNED = 1, C_HEX = 2, C_HIGH = 4, C_SPACE = 8 };
static const char SPECIALS[] = "<>\"():;,[]\\";
static uint8_t CLASS[256], LOWER[256];

void sas_email_init(void) {
    for (int c = 0; c < 256; c++) {
        int special = c != 0 && memchr(SPECIALS, c, sizeof SPECIALS - 1) != NULL;
        int space = ascii_space((uint8_t)c);
        CLASS[c] = (uint8_t)((space ? C_SPACE : 0) |
                             ((c <= 0x20 && !space) || c == 0x7f || special ? C_BANNED : 0) |
                             ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                                      (c >= 'A' && c <= 'F')
                                  ? C_HEX
                                  : 0) |
                             (c >= 0x80 ? C_HIGH : 0));
        LOWER[c] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
}

static inline int is_hex(uint8_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Lowercase of a code point in U+0080..U+017F (Latin-1 Supplement, Latin Extended-A), as
 * Unicode's simple mapping gives it, or -1 when this code leaves the value to polars (U+0130,
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

/* Code points here that defer the value: whitespace, control and format characters (a
 * separator, or a soft hyphen the repairs drop), and those NFKC changes (the repairs apply
 * it): U+00A0-U+00BE's compatibility forms, U+0132/3, U+013F/U+0140, U+0149, U+017F. */
static inline int deferred_cp(int cp) {
    if (cp <= 0xa0) return 1;
    switch (cp) {
    case 0xa8: case 0xaa: case 0xad: case 0xaf: case 0xb2: case 0xb3: case 0xb4: case 0xb5:
    case 0xb8: case 0xb9: case 0xba: case 0xbc: case 0xbd: case 0xbe: case 0x132: case 0x133:
    case 0x13f: case 0x140: case 0x149: case 0x17f:
        return 1;
    default:
        return 0;
    }
}

/* For a value with whitespace inside and no other separator: 1 when a piece between the
 * whitespace holds no '@'. The rules then read the cell as one value, not a list, and reject
 * it for its whitespace ("ana smith@example.com": malformed, whatever the engine); 0 when it
 * may be a list of addresses, which the polars rules split. Not under --gmail-canonical:
 * whitespace after a '+' is dropped with the suffix ("a+b c@gmail.com" is a@gmail.com). */
static int not_a_list(const uint8_t *v, size_t m) {
    int in_piece = 0, at = 0;
    for (size_t i = 0; i < m; i++) {
        if (ascii_space(v[i])) {
            if (in_piece && !at) return 1;
            in_piece = at = 0;
        } else {
            in_piece = 1;
            at |= v[i] == '@';
        }
    }
    return in_piece && !at;
}

static inline int gmail_domain(const uint8_t *domain, size_t len) {
    return (len == 9 && memcmp(domain, "gmail.com", 9) == 0) ||
           (len == 14 && memcmp(domain, "googlemail.com", 14) == 0);
}

/* Valid as the rules' regex says, for a lowercased value with exactly one '@' at `at` and
 * no character the regex bans (those values are malformed or deferred before this). */
static int email_valid(const uint8_t *buf, size_t len, size_t at) {
    if (at == 0 || at + 1 >= len) return 0;
    /* The domain: labels without dots, none empty, at least two. */
    if (buf[at + 1] == '.' || buf[len - 1] == '.') return 0;
    int dots = 0;
    for (size_t i = at + 1; i < len; i++) {
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
    uint64_t high = 0, banned = 0, ats = 0, dots = 0, special = 0;
    const __m128i before_a = _mm_set1_epi8('A' - 1), after_z = _mm_set1_epi8('Z' + 1);
    const __m128i space_up = _mm_set1_epi8(0x21), del = _mm_set1_epi8(0x7f);
    const __m128i minus1 = _mm_set1_epi8(-1), case_bit = _mm_set1_epi8(0x20);
    /* Only the blocks the value reaches (most addresses fit in two): the rest are zeros. */
    int blocks = (int)((m + 15) / 16);
    for (int k = 0; k < blocks; k++) {
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
        /* The specials: '"' 0x22, '(' ')' 0x28-29, ',' 0x2c, ':' ';' '<' 0x3a-3c, '>' 0x3e,
         * '[' '\\' ']' 0x5b-5d, as four ranges and three single bytes. */
        __m128i sp = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                         _mm_cmpeq_epi8(x, _mm_set1_epi8(','))),
            _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('>')),
                         _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('(' - 1)),
                                       _mm_cmplt_epi8(x, _mm_set1_epi8(')' + 1)))));
        sp = _mm_or_si128(sp, _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8(':' - 1)),
                                            _mm_cmplt_epi8(x, _mm_set1_epi8('<' + 1))));
        sp = _mm_or_si128(sp, _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('[' - 1)),
                                            _mm_cmplt_epi8(x, _mm_set1_epi8(']' + 1))));
        special |= (uint64_t)(uint16_t)_mm_movemask_epi8(sp) << shift;
    }
    uint64_t used = m == 64 ? ~(uint64_t)0 : (((uint64_t)1 << m) - 1);
    banned &= used; /* the zero padding is not part of the value */
    if (high || m == 64) return -1; /* non-ASCII, or maybe a pre-hashed digest */
    if (special) return E_DEFER;
    if (banned) return -1; /* whitespace or a control character: the general path */
    if (__builtin_popcountll(ats) != 1) return E_MALFORMED;
    size_t at = (size_t)__builtin_ctzll(ats);
    if (gmail && gmail_domain(buf + at + 1, m - at - 1)) return -1;
    /* The domain: at least one dot, none first, last or next to another. */
    uint64_t domain = used & ~(((uint64_t)2 << at) - 1);
    if (at == 0 || domain == 0) return E_MALFORMED;
    if ((dots >> (at + 1)) & 1 || (dots >> (m - 1)) & 1) return E_MALFORMED;
    if ((dots & (dots >> 1) & domain) || !(dots & domain)) return E_MALFORMED;
    return E_HASHED;
}
#endif

/* One email → its status; its normalized bytes are left in buf[0..*out_len). */
static int email_rules(const uint8_t *value, size_t len, int gmail, uint8_t *buf,
                       size_t *out_len) {
    size_t start = 0, end = len;
    while (start < end && ascii_space(value[start])) start++;
    while (end > start && ascii_space(value[end - 1])) end--;
    if (start == end) return E_EMPTY;
    size_t m = end - start;
    if (m > EMAIL_MAX) return E_DEFER;
    const uint8_t *v = value + start;
    if (v[m - 1] == '.') return E_DEFER; /* the repairs drop one trailing dot */
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
    }
    if (!(any & C_HIGH)) {
        *out_len = m;
        if (m == 64 && (all & C_HEX)) return E_PREHASHED;
        if (any & C_BANNED) return E_DEFER;
        if (any & C_SPACE) return !gmail && not_a_list(v, m) ? E_MALFORMED : E_DEFER;
        const uint8_t *first = memchr(buf, '@', m);
        if (first == NULL || memchr(first + 1, '@', m - (size_t)(first - buf) - 1) != NULL)
            return E_MALFORMED;
        size_t at = (size_t)(first - buf);
        if (!(gmail && gmail_domain(buf + at + 1, m - at - 1)))
            return email_valid(buf, m, at) ? E_HASHED : E_MALFORMED;
    }
    size_t ats = 0, at = 0;
    int hex = m == 64, spaces = 0;
    for (size_t i = 0; i < m; i++) {
        uint8_t c = v[i];
        if (c < 0x80) {
            if (CLASS[c] & C_BANNED) return E_DEFER;
            spaces |= CLASS[c] & C_SPACE;
            hex &= is_hex(c);
            buf[i] = LOWER[c];
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
        if (lower < 0 || deferred_cp(cp)) return E_DEFER;
        buf[i] = (uint8_t)(0xC0 | (lower >> 6));
        buf[i + 1] = (uint8_t)(0x80 | (lower & 0x3F));
        hex = 0;
        i++;
    }
    *out_len = m;
    if (hex) return E_PREHASHED;
    if (spaces) return !gmail && not_a_list(v, m) ? E_MALFORMED : E_DEFER;
    if (ats != 1) return E_MALFORMED;
    if (gmail) {
        const uint8_t *domain = buf + at + 1;
        size_t dlen = m - at - 1;
        if (gmail_domain(domain, dlen)) {
            size_t w = 0;
            for (size_t i = 0; i < at && buf[i] != '+'; i++) {
                if (buf[i] != '.') {
                    buf[w++] = buf[i];
                }
            }
            memmove(buf + w, buf + at, m - at);
            m = w + 1 + dlen;
            at = w;
            *out_len = m;
        }
    }
    return email_valid(buf, m, at) ? E_HASHED : E_MALFORMED;
}

PyObject *sas_py_emails(PyObject *self, PyObject *args) {
    PyObject *views, *validity, *data, *status_obj, *out_obj;
    Py_ssize_t offset, n;
    int gmail;
    if (!PyArg_ParseTuple(args, "OOOnnpOO", &views, &validity, &data, &offset, &n, &gmail,
                          &status_obj, &out_obj))
        return NULL;
    Column col;
    if (sas_column_open(&col, views, validity, data, offset, n) < 0) return NULL;
    Py_buffer status, out;
    if (sas_writable(status_obj, &status, n, 1, "status") < 0) {
        sas_column_release(&col);
        return NULL;
    }
    if (sas_writable(out_obj, &out, 64 * n, 1, "output") < 0) {
        PyBuffer_Release(&status);
        sas_column_release(&col);
        return NULL;
    }
    Py_ssize_t deferred = 0;
    Py_BEGIN_ALLOW_THREADS;
    uint8_t *codes = status.buf;
    uint8_t *o = out.buf;
    uint8_t buf[EMAIL_MAX];
    Hasher hasher = {.pending = 0};
    for (Py_ssize_t i = 0; i < n; i++, o += 64) {
        size_t len, m = 0;
        const uint8_t *value = column_value(&col, i, &len);
        int code = email_rules(value, len, gmail, buf, &m);
        codes[i] = (uint8_t)code;
        if (code == E_HASHED) {
            hasher_add(&hasher, buf, m, o);
        } else if (code == E_PREHASHED) {
            memcpy(o, buf, 64);
        } else if (code == E_DEFER) {
            deferred++;
        }
    }
    sas_hasher_flush(&hasher);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&out);
    PyBuffer_Release(&status);
    sas_column_release(&col);
    return PyLong_FromSsize_t(deferred);
}

