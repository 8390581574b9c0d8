/*
 * cplugin: a Pulpo content plugin in C, to show that ABI v1 needs neither Go nor the SDK.
 *
 * It declares one content type, "cfile.line" (one artifact per entry of an upstream index),
 * a repository type and a remote type, and a first stage that asks the host to fetch the
 * remote's URL, reads the fetched index from the read-only /in mount with stdio, and emits
 * one unit per entry through content_emit, in batches. The host downloads, hashes and
 * stores the artifacts; no artifact byte passes through the plugin.
 *
 * The index is text, one entry per line:
 *
 *   <path>                     digest unknown: the host hashes what it downloads
 *   <path> <sha256> <size>     the host checks the download against both
 *
 * separated by spaces or tabs. Blank lines and lines starting with "#" are skipped. <path>
 * is a clean relative path (spec 9.3) and the artifact's URL is <path>, percent-encoded,
 * resolved against the index URL's directory (the index URL's query is not carried over).
 * Any other line fails the sync with code "upstream" and a message naming the line.
 *
 * A cfile.line is identified by its name alone (the natural key), so once stored, the unit
 * named a.txt keeps its first artifact: the host reuses a stored unit with the same natural
 * key. When the index gives a digest, the first stage therefore asks content_lookup whether
 * a unit of that name is stored with another digest and fails the sync naming the entry,
 * rather than let the repository silently keep the old bytes.
 *
 * Build (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32):
 *
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor -o cplugin.wasm cplugin.c
 *
 * Built with -DBAD_DESCRIBE, its describe breaks the spec (a content type outside the plugin's
 * name whose natural key names no field), for the host's load tests.
 *
 * JSON is read with the small validating scanner below (objects are searched by member name,
 * so member order does not matter, spec 5.5) and written by hand with escaping.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define IMPORT(mod, name) __attribute__((import_module(mod), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))

/* The Extism kernel ("extism:host/env"). Pointers are i64 offsets into kernel memory. */
IMPORT("extism:host/env", "input_length") uint64_t k_input_length(void);
IMPORT("extism:host/env", "input_load_u8") uint32_t k_input_load_u8(uint64_t off);
IMPORT("extism:host/env", "input_load_u64") uint64_t k_input_load_u64(uint64_t off);
IMPORT("extism:host/env", "alloc") uint64_t k_alloc(uint64_t n);
IMPORT("extism:host/env", "free") void k_free(uint64_t p);
IMPORT("extism:host/env", "length_unsafe") uint64_t k_length_unsafe(uint64_t p);
IMPORT("extism:host/env", "load_u8") uint32_t k_load_u8(uint64_t p);
IMPORT("extism:host/env", "load_u64") uint64_t k_load_u64(uint64_t p);
IMPORT("extism:host/env", "store_u8") void k_store_u8(uint64_t p, uint32_t v);
IMPORT("extism:host/env", "store_u64") void k_store_u64(uint64_t p, uint64_t v);
IMPORT("extism:host/env", "output_set") void k_output_set(uint64_t p, uint64_t n);
IMPORT("extism:host/env", "error_set") void k_error_set(uint64_t p);

/* Pulpo's host functions ("pulpo:host/v1"): a JSON request block in, a JSON response block
 * (or 0) out. The guest owns both blocks. */
IMPORT("pulpo:host/v1", "fetch") uint64_t h_fetch(uint64_t req);
IMPORT("pulpo:host/v1", "content_emit") uint64_t h_content_emit(uint64_t req);
IMPORT("pulpo:host/v1", "content_lookup") uint64_t h_content_lookup(uint64_t req);
IMPORT("pulpo:host/v1", "progress") uint64_t h_progress(uint64_t req);
IMPORT("pulpo:host/v1", "log") void h_log(uint64_t req);

/* ---- memory ---- */

/* xrealloc traps when linear memory is exhausted: in WebAssembly address 0 is ordinary
 * memory, so writing through a NULL result would corrupt data instead of faulting. A trap
 * makes the host abort the call and report it (spec 5.3). */
static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) __builtin_trap();
    return q;
}

static char *xstrndup(const char *s, size_t n) {
    char *d = xrealloc(NULL, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* ---- kernel helpers: 8 bytes at a time, then the tail ---- */

static uint64_t store(const char *b, uint64_t n) {
    uint64_t p = k_alloc(n), i = 0;
    if (!p) __builtin_trap(); /* kernel memory exhausted: nothing sensible to report */
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, 8);
        k_store_u64(p + i, v);
    }
    for (; i < n; i++) k_store_u8(p + i, (uint8_t)b[i]);
    return p;
}

/* load copies block p into a NUL-terminated malloc'd string and frees p. */
static char *load(uint64_t p) {
    uint64_t n = k_length_unsafe(p), i = 0;
    char *b = xrealloc(NULL, n + 1);
    for (; i + 8 <= n; i += 8) {
        uint64_t v = k_load_u64(p + i);
        memcpy(b + i, &v, 8);
    }
    for (; i < n; i++) b[i] = (char)k_load_u8(p + i);
    b[n] = 0;
    k_free(p);
    return b;
}

/* input returns the call's input as a NUL-terminated string; *len is its length (an input
 * holding a NUL byte is not JSON, and the scanner stops there). */
static char *input(size_t *len) {
    uint64_t n = k_input_length(), i = 0;
    char *b = xrealloc(NULL, n + 1);
    for (; i + 8 <= n; i += 8) {
        uint64_t v = k_input_load_u64(i);
        memcpy(b + i, &v, 8);
    }
    for (; i < n; i++) b[i] = (char)k_input_load_u8(i);
    b[n] = 0;
    *len = n;
    return b;
}

static int32_t output(const char *s) {
    uint64_t n = strlen(s);
    k_output_set(n ? store(s, n) : 0, n);
    return 0;
}

/* call sends a JSON request to a host function and returns the response (or NULL for 0). */
static char *call(uint64_t (*fn)(uint64_t), const char *req, size_t n) {
    uint64_t p = store(req, n);
    uint64_t r = fn(p);
    k_free(p);
    return r ? load(r) : NULL;
}

/* ---- a growing string buffer ---- */

typedef struct {
    char *b;
    size_t n, cap;
} buf_t;

static void putn(buf_t *b, const char *s, size_t l) {
    if (b->n + l + 1 > b->cap) {
        b->cap = (b->n + l + 1) * 2;
        b->b = xrealloc(b->b, b->cap);
    }
    memcpy(b->b + b->n, s, l);
    b->n += l;
    b->b[b->n] = 0;
}

static void put(buf_t *b, const char *s) { putn(b, s, strlen(s)); }

static void putf(buf_t *b, const char *fmt, ...) {
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        putn(b, small, (size_t)n);
        return;
    }
    char *big = xrealloc(NULL, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    putn(b, big, (size_t)n);
    free(big);
}

/* put_json appends s as a quoted JSON string. Bytes >= 0x80 pass through: the index is
 * checked to be UTF-8 before any of it reaches here. */
static void put_json(buf_t *b, const char *s) {
    put(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            putn(b, e, 2);
        } else if (c < 0x20) {
            putf(b, "\\u%04x", c);
        } else {
            putn(b, s, 1);
        }
    }
    put(b, "\"");
}

/* ---- errors (spec 6): {"code","message"} via error_set, and a non-zero return ---- */

static int32_t fail(const char *code, const char *msg) {
    buf_t e = {0};
    put(&e, "{\"code\":");
    put_json(&e, code);
    put(&e, ",\"message\":");
    put_json(&e, msg);
    put(&e, "}");
    k_error_set(store(e.b, e.n));
    free(e.b);
    return 1;
}

/* failf is fail with a printf-style message. */
__attribute__((format(printf, 2, 3))) static int32_t failf(const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = xrealloc(NULL, n > 0 ? (size_t)n + 1 : 1);
    msg[0] = 0;
    va_start(ap, fmt);
    if (n > 0) vsnprintf(msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int32_t rc = fail(code, msg);
    free(msg);
    return rc;
}

/* ---- a small JSON scanner (RFC 8259), enough to find members and read scalars ---- */

#define JSON_MAX_DEPTH 64

static const char *ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* skip_string: p is at '"'; returns the position after the closing quote, or NULL. */
static const char *skip_string(const char *p) {
    for (p++;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL; /* the end of the text, or an unescaped control */
        if (c != '\\') continue;
        p++;
        if (*p == 'u') {
            for (int i = 1; i <= 4; i++)
                if (hexval(p[i]) < 0) return NULL;
            p += 4;
        } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
            return NULL;
        }
    }
}

static const char *skip_digits(const char *p) {
    if (*p < '0' || *p > '9') return NULL;
    while (*p >= '0' && *p <= '9') p++;
    return p;
}

static const char *skip_number(const char *p) {
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (!(p = skip_digits(p))) return NULL;
    if (*p == '.' && !(p = skip_digits(p + 1))) return NULL;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(p = skip_digits(p))) return NULL;
    }
    return p;
}

/* skip_value returns the position after the value starting at p (after white space), or
 * NULL when the text there is not a JSON value. */
static const char *skip_value(const char *p, int depth) {
    p = ws(p);
    if (depth > JSON_MAX_DEPTH) return NULL;
    switch (*p) {
    case '"':
        return skip_string(p);
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        p = ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                if (*p != '"' || !(p = skip_string(p))) return NULL;
                p = ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = skip_value(p, depth + 1))) return NULL;
            p = ws(p);
            if (*p == close) return p + 1;
            if (*p++ != ',') return NULL;
            p = ws(p);
        }
    }
    case 't':
        return strncmp(p, "true", 4) ? NULL : p + 4;
    case 'f':
        return strncmp(p, "false", 5) ? NULL : p + 5;
    case 'n':
        return strncmp(p, "null", 4) ? NULL : p + 4;
    default:
        return skip_number(p);
    }
}

/* valid_object reports whether text (of length n) is exactly one JSON object. */
static int valid_object(const char *text, size_t n) {
    const char *p = ws(text);
    if (*p != '{') return 0;
    const char *end = skip_value(p, 0);
    return end && !*ws(end) && (size_t)(ws(end) - text) == n;
}

static void put_utf8(buf_t *b, uint32_t cp) {
    char u[4];
    if (cp < 0x80) {
        u[0] = (char)cp;
        putn(b, u, 1);
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        putn(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        putn(b, u, 3);
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        putn(b, u, 4);
    }
}

static uint32_t hex4(const char *p) {
    return (uint32_t)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

/* json_string decodes the string value at p (NULL-safe) into a malloc'd UTF-8 string, or
 * returns NULL when p is not a well-formed string or the string holds a NUL character
 * (which C strings cannot carry and no member this plugin reads may contain). */
static char *json_string(const char *p) {
    if (!p || *p != '"' || !skip_string(p)) return NULL;
    buf_t b = {0};
    put(&b, "");
    for (p++; *p != '"'; p++) {
        if (*p != '\\') {
            putn(&b, p, 1);
            continue;
        }
        p++;
        char c = *p;
        switch (c) {
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            uint32_t cp = hex4(p + 1);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && p[1] == '\\' && p[2] == 'u') {
                uint32_t lo = hex4(p + 3);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* a lone surrogate, as Go does */
            if (cp == 0) {
                free(b.b);
                return NULL;
            }
            put_utf8(&b, cp);
            continue;
        }
        }
        putn(&b, &c, 1);
    }
    return b.b;
}

/* json_member returns the value of member name of the object at p (NULL-safe), or NULL
 * when p is not an object or has no such member. */
static const char *json_member(const char *p, const char *name) {
    if (!p || *p != '{') return NULL;
    p = ws(p + 1);
    while (*p == '"') {
        char *key = json_string(p);
        p = skip_string(p);
        if (!p || *(p = ws(p)) != ':') {
            free(key);
            return NULL;
        }
        p = ws(p + 1);
        int match = key && !strcmp(key, name);
        free(key);
        if (match) return p;
        if (!(p = skip_value(p, 0))) return NULL;
        p = ws(p);
        if (*p != ',') return NULL;
        p = ws(p + 1);
    }
    return NULL;
}

/* json_first and json_next iterate over the elements of the array at p (NULL-safe). */
static const char *json_first(const char *p) {
    if (!p || *p != '[') return NULL;
    p = ws(p + 1);
    return *p == ']' ? NULL : p;
}

static const char *json_next(const char *elem) {
    const char *p = skip_value(elem, 0);
    if (!p) return NULL;
    p = ws(p);
    return *p == ',' ? ws(p + 1) : NULL;
}

/* json_int reads the integer at p (NULL-safe); returns 0 when there is none. */
static int json_int(const char *p, long long *out) {
    if (!p || !(*p == '-' || (*p >= '0' && *p <= '9'))) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || end == p || *end == '.' || *end == 'e' || *end == 'E') return 0;
    *out = v;
    return 1;
}

/* host_failed checks a host function's response for {"error":{code,message}} (spec 6). If it
 * holds one, it becomes this call's error, with the host's code (so "cancelled" stays
 * "cancelled"), and host_failed returns 1. */
static int host_failed(const char *resp, const char *fn) {
    if (!resp) return 0;
    const char *err = json_member(ws(resp), "error");
    if (!err) return 0;
    char *code = json_string(json_member(err, "code"));
    char *msg = json_string(json_member(err, "message"));
    if (msg) fail(code && *code ? code : "internal", msg);
    else failf("internal", "%s: malformed error response from the host", fn);
    free(code);
    free(msg);
    return 1;
}

/* ---- exports ---- */

EXPORT("pulpo_abi_version_1_0") void abi_version_marker(void) {}

#ifdef BAD_DESCRIBE
#define LINE_TYPE "other.line"
#define NATURAL_KEY "id"
#else
#define LINE_TYPE "cfile.line"
#define NATURAL_KEY "name"
#endif

static const char *DESCRIBE =
    "{\"abi_version\":\"1.0\",\"name\":\"cfile\",\"version\":\"0.2.0\","
    "\"description\":\"Files listed in a text index, written in C\","
    "\"content_types\":[{\"name\":\"" LINE_TYPE "\","
    "\"description\":\"One file of an index, identified by its path\",\"fields\":["
    "{\"name\":\"name\",\"type\":\"string\",\"required\":true,"
    "\"description\":\"Relative path of the file, also its artifact's relative path\"},"
    "{\"name\":\"n\",\"type\":\"integer\","
    "\"description\":\"Position of the entry among the entries of the index it was first synced from, from 0\"},"
    "{\"name\":\"sha256\",\"type\":\"string\",\"description\":\"SHA-256 the index gave, if any\"},"
    "{\"name\":\"size\",\"type\":\"integer\",\"description\":\"Size in bytes the index gave, if any\"}],"
    "\"natural_key\":[\"" NATURAL_KEY "\"],\"artifacts\":{\"count\":\"one\",\"relative_path_field\":\"name\"}}],"
    "\"repository_types\":[{\"name\":\"cfile.repo\",\"content_types\":[\"cfile.line\"],\"remote_types\":[\"cfile.remote\"]}],"
    "\"remote_types\":[{\"name\":\"cfile.remote\"}]}";

EXPORT("describe") int32_t describe(void) { return output(DESCRIBE); }

/* BATCH is how many units go into one content_emit (and one content_lookup). */
#define BATCH 100
/* SHOW is how many bytes of a bad index line an error message quotes. */
#define SHOW 80

/* entry is one parsed index line. path points into the line buffer; sha256 is "" when the
 * index gave no digest. */
typedef struct {
    const char *path;
    char sha256[65];
    long long size;
} entry_t;

/* pending is an emitted-but-not-flushed entry that carries a digest, kept for the lookup
 * that guards against changed bytes under a stored name. */
typedef struct {
    char *name;
    char sha256[65];
    int line;
} pending_t;

typedef struct {
    const char *index_url; /* for messages */
    const char *base;      /* artifact URLs are base + percent-encoded path */
    int deferred;          /* policy is not immediate: record artifacts, download later */
    buf_t batch;           /* {"content":[ ... */
    int units;             /* units in batch */
    pending_t digests[BATCH];
    int ndigests;
    int emitted; /* units emitted by this call, the next unit's "n" */
} sync_t;

static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (i + k >= n) return 0; /* the sequence runs past the end */
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k + 1;
    }
    return 1;
}

/* clean_path says what is wrong with p as a clean relative path (spec 9.3), or NULL. */
static const char *clean_path(const char *p) {
    if (!*p) return "the path is empty";
    if (*p == '/') return "the path is absolute";
    if (strchr(p, '\\')) return "the path contains a backslash";
    for (const char *s = p;;) {
        size_t l = strcspn(s, "/");
        if (l == 0) return "the path has an empty segment";
        if ((l == 1 && s[0] == '.') || (l == 2 && s[0] == '.' && s[1] == '.'))
            return "the path has a \".\" or \"..\" segment";
        if (!s[l]) return NULL;
        s += l + 1;
    }
}

static int is_sha256(const char *s) {
    if (strlen(s) != 64) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    return 1;
}

/* line_error fails the call naming the index, the line's number and (the start of) its
 * text unless text is NULL, with code upstream: the upstream broke the index format. */
static int32_t line_error(sync_t *s, int line, const char *text, size_t len, const char *why) {
    if (!text) return failf("upstream", "index %s line %d: %s", s->index_url, line, why);
    size_t show = len;
    if (show > SHOW) {
        show = SHOW;
        while (show > 0 && ((unsigned char)text[show] & 0xC0) == 0x80) show--; /* whole characters */
    }
    return failf("upstream", "index %s line %d \"%.*s%s\": %s", s->index_url, line, (int)show, text,
                 show < len ? "..." : "", why);
}

/* parse_line parses one line (its end of line already cut, len bytes) into e. It returns 1
 * for an entry, 0 for a blank or comment line, and -1 after failing the call. */
static int parse_line(sync_t *s, int lineno, char *line, size_t len, entry_t *e) {
    if (strlen(line) != len) {
        line_error(s, lineno, line, strlen(line), "the line contains a NUL byte");
        return -1;
    }
    if (!valid_utf8((const unsigned char *)line, len)) {
        line_error(s, lineno, NULL, 0, "the line is not valid UTF-8"); /* not quoted: JSON needs UTF-8 */
        return -1;
    }
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p || *p == '#') return 0;
    char *shown = p;
    size_t shown_len = len - (size_t)(p - line);
    while (shown_len > 0 && (shown[shown_len - 1] == ' ' || shown[shown_len - 1] == '\t')) shown_len--;

    /* Split into fields; keep a copy of the text for messages, the split writes NULs. */
    char *text = xstrndup(shown, shown_len);
    char *f[4];
    int n = 0;
    for (char *t = p; *t && n < 4;) {
        f[n++] = t;
        t += strcspn(t, " \t");
        if (*t) *t++ = 0;
        while (*t == ' ' || *t == '\t') t++;
    }
    const char *why = NULL;
    char msg[96];
    if (n != 1 && n != 3) {
        snprintf(msg, sizeof msg, "want \"<path>\" or \"<path> <sha256> <size>\", got %s fields", n > 3 ? "more than 3" : "2");
        why = msg;
    } else if ((why = clean_path(f[0])) != NULL) {
    } else if (n == 3 && !is_sha256(f[1])) {
        why = "the sha256 is not 64 lowercase hex digits";
    } else if (n == 3) {
        size_t digits = strspn(f[2], "0123456789");
        if (digits == 0 || f[2][digits] || digits > 18) why = "the size is not a non-negative integer below 10^18";
    }
    if (why) {
        line_error(s, lineno, text, shown_len, why);
        free(text);
        return -1;
    }
    free(text);
    e->path = f[0];
    e->sha256[0] = 0;
    e->size = 0;
    if (n == 3) {
        memcpy(e->sha256, f[1], 65);
        e->size = strtoll(f[2], NULL, 10);
    }
    return 1;
}

/* put_url appends base + path to b as a JSON string, percent-encoding every byte of path
 * but unreserved characters and "/", so names with "#", "?", "%" or non-ASCII characters
 * reach the upstream as the same names. */
static void put_url(buf_t *b, const char *base, const char *path) {
    buf_t u = {0};
    put(&u, base);
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr("-._~/", *c))
            putn(&u, (const char *)c, 1);
        else
            putf(&u, "%%%02X", *c);
    }
    put_json(b, u.b);
    free(u.b);
}

/* index_base returns the index URL's directory (up to its last "/", without query and
 * fragment), malloc'd, or NULL when url is not an absolute URL with a host. */
static char *index_base(const char *url) {
    const char *sep = strstr(url, "://");
    if (!sep || sep == url) return NULL;
    for (const char *c = url; c < sep; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (c > url && strchr("0123456789+-.", *c)))) return NULL;
    const char *host = sep + 3;
    size_t hostlen = strcspn(host, "/?#");
    if (hostlen == 0) return NULL;
    const char *path = host + hostlen;
    size_t pathlen = strcspn(path, "?#");
    size_t keep = (size_t)(path - url);
    for (size_t i = pathlen; i > 0; i--) {
        if (path[i - 1] == '/') {
            keep += i;
            return xstrndup(url, keep);
        }
    }
    char *b = xrealloc(NULL, keep + 2); /* "https://host" names the root: "https://host/" */
    memcpy(b, url, keep);
    b[keep] = '/';
    b[keep + 1] = 0;
    return b;
}

static void reset_batch(sync_t *s) {
    s->batch.n = 0;
    put(&s->batch, "{\"content\":[");
    s->units = 0;
    for (int i = 0; i < s->ndigests; i++) free(s->digests[i].name);
    s->ndigests = 0;
}

/* check_stored fails the call if a unit named like a pending entry is stored with another
 * sha256: the host would keep the stored unit and its old bytes (see the top comment). */
static int check_stored(sync_t *s) {
    if (s->ndigests == 0) return 0;
    buf_t req = {0};
    put(&req, "{\"type\":\"cfile.line\",\"scope\":\"all\",\"keys\":[");
    for (int i = 0; i < s->ndigests; i++) {
        put(&req, i ? ",{\"name\":" : "{\"name\":");
        put_json(&req, s->digests[i].name);
        put(&req, "}");
    }
    put(&req, "]}");
    char *resp = call(h_content_lookup, req.b, req.n);
    free(req.b);
    if (host_failed(resp, "content_lookup")) {
        free(resp);
        return 1;
    }
    int rc = 0;
    const char *content = json_member(resp ? ws(resp) : NULL, "content");
    for (const char *c = json_first(content); c && !rc; c = json_next(c)) {
        const char *fields = json_member(c, "fields");
        char *name = json_string(json_member(fields, "name"));
        char *sha = json_string(json_member(fields, "sha256"));
        for (int i = 0; name && sha && i < s->ndigests; i++) {
            pending_t *d = &s->digests[i];
            if (!strcmp(d->name, name) && strcmp(d->sha256, sha)) {
                rc = failf("upstream",
                           "index %s line %d: %s changed upstream to sha256 %s, but cfile.line %s is stored with sha256 %s "
                           "(a cfile.line is identified by its name, so its bytes cannot change)",
                           s->index_url, d->line, name, d->sha256, name, sha);
                break;
            }
        }
        free(name);
        free(sha);
    }
    free(resp);
    return rc;
}

/* flush sends the pending units to content_emit; returns non-zero after failing the call. */
static int flush(sync_t *s) {
    if (s->units == 0) return 0;
    if (check_stored(s)) return 1;
    put(&s->batch, "]}");
    char *resp = call(h_content_emit, s->batch.b, s->batch.n);
    int rc = 0;
    long long accepted = -1;
    if (host_failed(resp, "content_emit")) rc = 1;
    else if (!json_int(json_member(resp ? ws(resp) : NULL, "accepted"), &accepted) || accepted != s->units)
        rc = failf("internal", "content_emit accepted %lld of %d units", accepted, s->units);
    free(resp);
    reset_batch(s);
    return rc;
}

/* add appends an entry to the batch, flushing a full batch; returns non-zero after failing. */
static int add(sync_t *s, const entry_t *e, int lineno) {
    buf_t *b = &s->batch;
    if (s->units) put(b, ",");
    put(b, "{\"type\":\"cfile.line\",\"fields\":{\"name\":");
    put_json(b, e->path);
    putf(b, ",\"n\":%d", s->emitted);
    if (e->sha256[0]) {
        put(b, ",\"sha256\":");
        put_json(b, e->sha256);
        putf(b, ",\"size\":%lld", e->size);
    }
    put(b, "},\"artifacts\":[{\"relative_path\":");
    put_json(b, e->path);
    put(b, ",\"url\":");
    put_url(b, s->base, e->path);
    if (e->sha256[0]) {
        put(b, ",\"sha256\":");
        put_json(b, e->sha256);
        putf(b, ",\"size\":%lld", e->size);
    }
    put(b, s->deferred ? ",\"deferred\":true}]}" : "}]}");
    if (e->sha256[0]) {
        pending_t *d = &s->digests[s->ndigests++];
        d->name = xstrndup(e->path, strlen(e->path));
        memcpy(d->sha256, e->sha256, 65);
        d->line = lineno;
    }
    s->units++;
    s->emitted++;
    return s->units == BATCH ? flush(s) : 0;
}

/* fetch_index fetches url into /in/index and returns the guest path, malloc'd, or NULL
 * after failing the call. */
static char *fetch_index(const char *url) {
    buf_t req = {0};
    put(&req, "{\"url\":");
    put_json(&req, url);
    put(&req, ",\"name\":\"index\"}");
    char *resp = call(h_fetch, req.b, req.n);
    free(req.b);
    if (host_failed(resp, "fetch")) {
        free(resp);
        return NULL;
    }
    const char *r = resp ? ws(resp) : NULL;
    long long status = 0;
    char *path = NULL;
    if (!json_int(json_member(r, "status"), &status))
        failf("internal", "fetch index %s: the host's response has no status", url);
    else if (status < 200 || status > 299)
        failf("upstream", "fetch index %s: http status %lld", url, status);
    else if (!(path = json_string(json_member(r, "path"))) || strncmp(path, "/in/", 4))
        failf("internal", "fetch index %s: the host's response has no path under /in", url);
    else {
        free(resp);
        return path;
    }
    free(path);
    free(resp);
    return NULL;
}

/* emit_index reads the index at path and emits its entries. */
static int32_t emit_index(sync_t *s, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return failf("internal", "open %s: %s", path, strerror(errno));
    /* The mount is read-only (spec 5.4): opening for writing must fail. */
    FILE *w = fopen(path, "a");
    if (w) {
        fclose(w);
        fclose(f);
        return fail("internal", "the read-only mount accepted a write");
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    while (!rc && (len = getline(&line, &cap, f)) != -1) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        entry_t e;
        int got = parse_line(s, lineno, line, (size_t)len, &e);
        if (got < 0) rc = 1;
        else if (got > 0) rc = add(s, &e, lineno);
    }
    if (!rc && ferror(f)) rc = failf("internal", "read %s after line %d: %s", path, lineno, strerror(errno));
    free(line);
    fclose(f);
    return rc ? rc : flush(s);
}

/* run syncs from the index at url; returns non-zero after failing the call. */
static int32_t run(const char *url, const char *policy) {
    char *base = index_base(url);
    if (!base)
        return failf("invalid_input", "remote url %s: want an absolute url of the index, like https://example.org/repo/INDEX", url);
    char *path = fetch_index(url);
    if (!path) {
        free(base);
        return 1;
    }
    sync_t s = {.index_url = url, .base = base, .deferred = policy && *policy && strcmp(policy, "immediate")};
    reset_batch(&s);
    int32_t rc = emit_index(&s, path);
    reset_batch(&s);
    free(s.batch.b);
    free(path);
    free(base);
    if (rc) return rc;

    char msg[160];
    int l = snprintf(msg, sizeof msg, "{\"level\":\"info\",\"message\":\"cplugin emitted %d units\"}", s.emitted);
    uint64_t lp = store(msg, (size_t)l);
    h_log(lp);
    k_free(lp);
    /* One report, when the index is done: the host reports downloads and associations
     * itself, and the number of entries is only known at the end. */
    l = snprintf(msg, sizeof msg,
                 "{\"code\":\"sync.parsing\",\"message\":\"Parsing index\",\"state\":\"completed\",\"done\":%d,\"total\":%d}",
                 s.emitted, s.emitted);
    char *resp = call(h_progress, msg, (size_t)l);
    rc = host_failed(resp, "progress");
    free(resp);
    if (rc) return rc;
    snprintf(msg, sizeof msg, "{\"details\":{\"lines\":%d}}", s.emitted);
    return output(msg);
}

EXPORT("sync_first_stage") int32_t sync_first_stage(void) {
    size_t n;
    char *in = input(&n);
    if (!valid_object(in, n)) {
        free(in);
        return fail("invalid_input", "sync request: not a JSON object");
    }
    const char *remote = json_member(ws(in), "remote");
    char *url = json_string(json_member(remote, "url"));
    char *policy = json_string(json_member(remote, "policy"));
    free(in);
    int32_t rc = url && *url ? run(url, policy) : fail("invalid_input", "sync request: remote.url is missing");
    free(url);
    free(policy);
    return rc;
}
