/*
 * cplugin: a Pulpo content plugin in C, to show that ABI v1 needs no Go and no SDK.
 *
 * It declares one content type, "cfile.line" (one artifact per line of an upstream listing),
 * and a first stage that asks the host to fetch the remote's URL, reads the fetched file
 * from the read-only mount with stdio, and emits one unit per line through content_emit,
 * in batches.
 *
 * Build (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32):
 *
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor -o cplugin.wasm cplugin.c
 *
 * Built with -DBAD_DESCRIBE, its describe breaks the spec (a content type outside the plugin's
 * name whose natural key names no field), for the host's load tests.
 *
 * The JSON handling is deliberately naive (it finds members by name and assumes the host's
 * compact encoding); a real plugin would use a JSON library.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
IMPORT("pulpo:host/v1", "progress") uint64_t h_progress(uint64_t req);
IMPORT("pulpo:host/v1", "log") void h_log(uint64_t req);

/* ---- kernel helpers: 8 bytes at a time, then the tail ---- */

static uint64_t store(const char *b, uint64_t n) {
    uint64_t p = k_alloc(n), i = 0;
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
    char *b = malloc(n + 1);
    for (; i + 8 <= n; i += 8) {
        uint64_t v = k_load_u64(p + i);
        memcpy(b + i, &v, 8);
    }
    for (; i < n; i++) b[i] = (char)k_load_u8(p + i);
    b[n] = 0;
    k_free(p);
    return b;
}

static char *input(void) {
    uint64_t n = k_input_length(), i = 0;
    char *b = malloc(n + 1);
    for (; i + 8 <= n; i += 8) {
        uint64_t v = k_input_load_u64(i);
        memcpy(b + i, &v, 8);
    }
    for (; i < n; i++) b[i] = (char)k_input_load_u8(i);
    b[n] = 0;
    return b;
}

static int32_t output(const char *s) {
    uint64_t n = strlen(s);
    k_output_set(n ? store(s, n) : 0, n);
    return 0;
}

/* fail sets the ABI error {code, message} and returns 1. */
static int32_t fail(const char *code, const char *msg) {
    char buf[512];
    snprintf(buf, sizeof buf, "{\"code\":\"%s\",\"message\":\"%s\"}", code, msg);
    k_error_set(store(buf, strlen(buf)));
    return 1;
}

/* call sends a JSON request to a host function and returns the response (or NULL for 0). */
static char *call(uint64_t (*fn)(uint64_t), const char *req) {
    uint64_t p = store(req, strlen(req));
    uint64_t r = fn(p);
    k_free(p);
    return r ? load(r) : NULL;
}

/* member copies the string value of "name":"..." (first occurrence) into out. */
static int member(const char *json, const char *name, char *out, size_t cap) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":\"", name);
    const char *s = strstr(json, key);
    if (!s) return 0;
    s += strlen(key);
    size_t i = 0;
    while (*s && *s != '"' && i + 1 < cap) out[i++] = *s++;
    out[i] = 0;
    return 1;
}

/* ---- a growing string buffer ---- */

typedef struct { char *b; size_t n, cap; } buf_t;

static void put(buf_t *b, const char *s) {
    size_t l = strlen(s);
    if (b->n + l + 1 > b->cap) {
        b->cap = (b->n + l + 1) * 2;
        b->b = realloc(b->b, b->cap);
    }
    memcpy(b->b + b->n, s, l + 1);
    b->n += l;
}

/* put_escaped appends s as JSON string content. */
static void put_escaped(buf_t *b, const char *s) {
    char c[3] = {0};
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') { c[0] = '\\'; c[1] = *s; }
        else if ((unsigned char)*s < 0x20) continue;
        else { c[0] = *s; c[1] = 0; }
        put(b, c);
    }
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
    "{\"abi_version\":\"1.0\",\"name\":\"cfile\",\"version\":\"0.1.0\","
    "\"description\":\"Lines of a listing, written in C\","
    "\"content_types\":[{\"name\":\"" LINE_TYPE "\",\"fields\":["
    "{\"name\":\"name\",\"type\":\"string\",\"required\":true},"
    "{\"name\":\"n\",\"type\":\"integer\"}],"
    "\"natural_key\":[\"" NATURAL_KEY "\"],\"artifacts\":{\"count\":\"one\",\"relative_path_field\":\"name\"}}],"
    "\"repository_types\":[{\"name\":\"cfile.repo\",\"content_types\":[\"cfile.line\"],\"remote_types\":[\"cfile.remote\"]}],"
    "\"remote_types\":[{\"name\":\"cfile.remote\"}]}";

EXPORT("describe") int32_t describe(void) { return output(DESCRIBE); }

#define BATCH 100

static int flush(buf_t *batch, int *pending) {
    if (*pending == 0) return 1;
    put(batch, "]}");
    char *resp = call(h_content_emit, batch->b);
    int ok = resp && !strstr(resp, "\"error\"");
    free(resp);
    batch->n = 0;
    put(batch, "{\"content\":[");
    *pending = 0;
    return ok;
}

EXPORT("sync_first_stage") int32_t sync_first_stage(void) {
    char *in = input();
    const char *p = in;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    char url[2048], policy[32] = "";
    if (*p != '{' || !member(in, "url", url, sizeof url)) {
        free(in);
        return fail("invalid_input", "sync request: want a JSON object with remote.url");
    }
    member(in, "policy", policy, sizeof policy);
    free(in);
    int deferred = strcmp(policy, "immediate") != 0 && policy[0] != 0;

    buf_t req = {0};
    put(&req, "{\"url\":\"");
    put_escaped(&req, url);
    put(&req, "\",\"name\":\"listing.txt\"}");
    char *resp = call(h_fetch, req.b);
    free(req.b);
    char path[1024];
    if (!resp || strstr(resp, "\"error\"") || !member(resp, "path", path, sizeof path)) {
        free(resp);
        return fail("upstream", "fetch of the listing failed or returned no body");
    }
    free(resp);

    FILE *f = fopen(path, "r");
    if (!f) return fail("internal", "cannot open the fetched listing");
    /* The mount is read-only: opening for writing must fail. */
    FILE *w = fopen(path, "a");
    if (w) {
        fclose(w);
        fclose(f);
        return fail("internal", "the read-only mount accepted a write");
    }

    /* Artifacts live next to the listing. */
    char base[2048];
    snprintf(base, sizeof base, "%s", url);
    char *slash = strrchr(base, '/');
    if (slash) slash[1] = 0;

    buf_t batch = {0};
    put(&batch, "{\"content\":[");
    int pending = 0, n = 0;
    char line[1024], num[32];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        if (pending) put(&batch, ",");
        put(&batch, "{\"type\":\"cfile.line\",\"fields\":{\"name\":\"");
        put_escaped(&batch, line);
        snprintf(num, sizeof num, "\",\"n\":%d},", n);
        put(&batch, num);
        put(&batch, "\"artifacts\":[{\"relative_path\":\"");
        put_escaped(&batch, line);
        put(&batch, "\",\"url\":\"");
        put_escaped(&batch, base);
        put_escaped(&batch, line);
        put(&batch, deferred ? "\",\"deferred\":true}]}" : "\"}]}");
        pending++;
        n++;
        if (pending == BATCH && !flush(&batch, &pending)) {
            fclose(f);
            free(batch.b);
            return fail("internal", "content_emit failed");
        }
    }
    fclose(f);
    int ok = flush(&batch, &pending);
    free(batch.b);
    if (!ok) return fail("internal", "content_emit failed");

    char msg[256];
    snprintf(msg, sizeof msg, "{\"level\":\"info\",\"message\":\"cplugin emitted %d lines\"}", n);
    uint64_t lp = store(msg, strlen(msg));
    h_log(lp);
    k_free(lp);
    snprintf(msg, sizeof msg, "{\"code\":\"sync.parsing\",\"message\":\"Parsing listing\",\"state\":\"completed\",\"done\":%d,\"total\":%d}", n, n);
    free(call(h_progress, msg));

    char out[128];
    snprintf(out, sizeof out, "{\"details\":{\"lines\":%d}}", n);
    return output(out);
}
