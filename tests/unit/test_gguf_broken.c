/* test_gguf_broken.c -- broken GGUF files (issue 13 item 7): made from one valid tiny GGUF
 * (gguf_craft.c) by truncating it at every offset, breaking the magic and version, huge
 * counts and lengths, bad value and tensor types, bad dimensions, wrong tensor offsets,
 * duplicate names, and wrongly typed known keys. Each goes through
 *   - gguf_info_read (what /api/create, /api/show and the scheduler read),
 *   - store_create (what /api/create runs): a refused file leaves no model and no blob,
 *   - and, when the store took it, engine_new (what a runner does when it loads), in a
 *     child process, so an abort inside llama.cpp shows as a failure here rather than
 *     killing the test.
 * A file that is structurally broken must be refused with "<path> is not a GGUF file (...)";
 * a well-formed file with odd metadata may be accepted, but never crashes anything. The
 * number of files tried is printed ("broken GGUF files tried: N"). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>
#include <llama.h>

#include "engine/engine.h"
#include "gguf_craft.h"
#include "store/gguf_info.h"
#include "store/store.h"

static char tmpdir[64];
static struct store *st;
static int n_tried, n_refused, n_accepted, n_loaded;

enum expect { MUST_FAIL, MAY_PASS };

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static size_t count_models(void)
{
    struct store_list l;
    struct bw_err err;
    assert_int_equal(store_list(st, &l, &err), 0);
    size_t n = l.n_items;
    store_list_fini(&l);
    return n;
}

static void quiet(enum ggml_log_level level, const char *text, void *ud) {}

/* engine_new in a child: 0 loaded, 1 refused cleanly (BW_EINVAL and a message), other: the
 * child died (signal) or answered otherwise. */
static int load_in_child(const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        llama_log_set(quiet, NULL);
        struct engine_params p;
        engine_params_default(&p);
        p.model_path = path;
        p.n_parallel = 1;
        p.n_threads = 1;
        struct engine *e = NULL;
        struct bw_err err = {0};
        int rc = engine_new(&p, NULL, NULL, &e, &err);
        if (rc == BW_OK) {
            engine_free(e);
            _exit(0);
        }
        _exit(rc != BW_OK && err.msg[0] ? 1 : 3);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        return 100 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* One broken file through the reader, the store and the loader. */
static void try_file(const char *what, const uint8_t *data, size_t len, enum expect ex)
{
    char path[256], name[64];
    snprintf(path, sizeof path, "%s/case-%d.gguf", tmpdir, n_tried);
    snprintf(name, sizeof name, "broken%d", n_tried);
    write_file(path, data, len);
    n_tried++;

    struct gguf_info *info = NULL;
    struct bw_err err = {0};
    int rc = gguf_info_read(path, &info, &err);
    char want[300];
    snprintf(want, sizeof want, "%s is not a GGUF file (", path);
    if (ex == MUST_FAIL && rc == BW_OK)
        fail_msg("%s: gguf_info_read accepted a broken file", what);
    if (rc != BW_OK) {
        if (rc != BW_EINVAL || strncmp(err.msg, want, strlen(want)))
            fail_msg("%s: gguf_info_read: %d '%s', want BW_EINVAL '%s...'", what, rc, err.msg, want);
    } else {
        gguf_info_free(info);
    }

    size_t models = count_models(), blobs = count_files(store_blobs_dir(st));
    struct store_create req = {.from_path = path};
    struct bw_err cerr = {0};
    int crc = store_create(st, name, &req, &cerr);
    if (rc != BW_OK) {
        /* refused by the reader: the store refuses it the same way, and writes nothing */
        if (crc != BW_EINVAL || !strstr(cerr.msg, "is not a GGUF file"))
            fail_msg("%s: store_create: %d '%s'", what, crc, cerr.msg);
        assert_int_equal(count_models(), models);
        assert_int_equal(count_files(store_blobs_dir(st)), blobs);
        n_refused++;
        unlink(path);
        return;
    }
    if (crc != BW_OK)
        fail_msg("%s: gguf_info_read took it but store_create said %d '%s'", what, crc, cerr.msg);
    n_accepted++;
    /* the loader runs on the blob the store keeps, as a runner would */
    struct store_model *m = NULL;
    assert_int_equal(store_resolve(st, name, &m, &cerr), 0);
    int lrc = load_in_child(m->model_path);
    store_model_free(m);
    if (lrc != 0 && lrc != 1)
        fail_msg("%s: loading the created model did not end cleanly (child status %d)", what, lrc);
    n_loaded += lrc == 0;
    assert_int_equal(store_delete(st, name, &cerr), 0);
    unlink(path);
}

static void set_u32(uint8_t *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }
static void set_u64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }

/* A copy of the valid file with one u32/u64 field replaced. */
static void try_u32(const char *what, const uint8_t *good, size_t len, size_t off, uint32_t v, enum expect ex)
{
    uint8_t *b = malloc(len);
    memcpy(b, good, len);
    set_u32(b, off, v);
    try_file(what, b, len, ex);
    free(b);
}

static void try_u64(const char *what, const uint8_t *good, size_t len, size_t off, uint64_t v, enum expect ex)
{
    uint8_t *b = malloc(len);
    memcpy(b, good, len);
    set_u64(b, off, v);
    try_file(what, b, len, ex);
    free(b);
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bellows-gguf-broken-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char root[128];
    snprintf(root, sizeof root, "%s/store", tmpdir);
    struct bw_err err;
    assert_int_equal(store_open(root, &st, &err), 0);
    return 0;
}

static int teardown(void **state)
{
    store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    printf("broken GGUF files tried: %d (refused by the reader and the store: %d; accepted: %d, "
           "of which loaded: %d, refused by the loader: %d)\n",
           n_tried, n_refused, n_accepted, n_loaded, n_accepted - n_loaded);
    return 0;
}

/* The valid file is valid: the reader and the store take it, and what the reader says
 * matches what was written (so the broken variants differ from it in one thing only). */
static void test_valid_file(void **state)
{
    uint8_t *g;
    struct craft_layout l;
    struct craft_opts o = {0};
    size_t n = craft_gguf(&o, &g, &l);
    assert_true(n > 0);
    char path[256];
    snprintf(path, sizeof path, "%s/valid.gguf", tmpdir);
    write_file(path, g, n);
    struct gguf_info *info;
    struct bw_err err;
    assert_int_equal(gguf_info_read(path, &info, &err), 0);
    assert_string_equal(info->arch, "llama");
    assert_int_equal(info->n_ctx_train, 256);
    assert_int_equal(info->n_head, 2);
    assert_int_equal(info->n_tensors, 2);
    assert_int_equal(info->n_params, 32);
    assert_int_equal(info->n_kvs, CRAFT_NKV);
    gguf_info_free(info);
    unlink(path);
    try_file("valid", g, n, MAY_PASS);
    assert_int_equal(n_accepted, 1);
    free(g);
}

static void test_truncated(void **state)
{
    uint8_t *g;
    struct craft_layout l;
    struct craft_opts o = {0};
    size_t n = craft_gguf(&o, &g, &l);
    for (size_t cut = 0; cut < n; cut++) {
        char what[64];
        snprintf(what, sizeof what, "truncated at %zu of %zu", cut, n);
        try_file(what, g, cut, MUST_FAIL);
    }
    free(g);
}

static void test_header(void **state)
{
    uint8_t *g;
    struct craft_layout l;
    struct craft_opts o = {0};
    size_t n = craft_gguf(&o, &g, &l);
    static const char *const magics[] = {"GGUX", "gguf", "GGML", "FUGG", "\0\0\0\0"};
    for (size_t i = 0; i < sizeof magics / sizeof *magics; i++) {
        uint8_t *b = malloc(n);
        memcpy(b, g, n);
        memcpy(b, magics[i], 4);
        try_file("bad magic", b, n, MUST_FAIL);
        free(b);
    }
    static const uint32_t versions[] = {0, 1, 4, 0x03000000, UINT32_MAX};
    for (size_t i = 0; i < sizeof versions / sizeof *versions; i++)
        try_u32("bad version", g, n, l.version, versions[i], MUST_FAIL);
    static const uint64_t huge[] = {3, 1000, 1ull << 32, 1ull << 40, 1ull << 62, INT64_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        try_u64("huge n_tensors", g, n, l.n_tensors, huge[i], MUST_FAIL);
        try_u64("huge n_kv", g, n, l.n_kv, huge[i] + (huge[i] == 3 ? CRAFT_NKV : 0), MUST_FAIL);
    }
    /* fewer than there are: the rest is read as something else */
    try_u64("n_tensors 1", g, n, l.n_tensors, 1, MAY_PASS);
    try_u64("n_tensors 0", g, n, l.n_tensors, 0, MAY_PASS);
    try_u64("n_kv 5", g, n, l.n_kv, 5, MUST_FAIL);
    try_u64("n_kv 0", g, n, l.n_kv, 0, MUST_FAIL);
    free(g);
}

static void test_lengths_and_types(void **state)
{
    uint8_t *g;
    struct craft_layout l;
    struct craft_opts o = {0};
    size_t n = craft_gguf(&o, &g, &l);
    static const uint64_t lens[] = {0, 1000, 1ull << 31, 1ull << 40, INT64_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        try_u64("huge key length", g, n, l.kv_key_len[CK_CTX], lens[i], MUST_FAIL);
        if (lens[i]) { /* an empty string value is a valid one */
            try_u64("huge string length", g, n, l.kv_val[CK_NAME], lens[i], MUST_FAIL);
            try_u64("huge array count", g, n, l.kv_val[CK_HEADS] + 4, lens[i], MUST_FAIL);
            try_u64("huge string-array count", g, n, l.kv_val[CK_TOKENS] + 4, lens[i], MUST_FAIL);
            try_u64("huge tensor name length", g, n, l.ti_name_len[1], lens[i], MUST_FAIL);
        }
    }
    static const uint32_t bad_types[] = {13, 99, 0x80000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_types / sizeof *bad_types; i++) {
        try_u32("bad value type", g, n, l.kv_type[CK_EMBD], bad_types[i], MUST_FAIL);
        try_u32("bad array element type", g, n, l.kv_val[CK_HEADS], bad_types[i], MUST_FAIL);
        try_u32("bad tensor type", g, n, l.ti_type[0], bad_types[i] + 1000, MUST_FAIL);
    }
    /* a value type whose size differs from what is stored: the rest is misread */
    try_u32("u32 read as u64", g, n, l.kv_type[CK_EMBD], 10, MUST_FAIL);
    try_u32("u32 read as u8", g, n, l.kv_type[CK_EMBD], 0, MUST_FAIL);
    try_u32("string read as u32", g, n, l.kv_type[CK_NAME], 4, MUST_FAIL);
    /* tensor types that exist: one bigger than its data, one removed (GGML_TYPE_Q4_2 = 4) */
    try_u32("tensor type f64", g, n, l.ti_type[1], 28, MUST_FAIL);
    try_u32("tensor type removed", g, n, l.ti_type[1], 4, MUST_FAIL);
    try_u32("tensor type f16", g, n, l.ti_type[1], 1, MAY_PASS);
    free(g);
}

static void test_tensors(void **state)
{
    uint8_t *g;
    struct craft_layout l;
    struct craft_opts o = {0};
    size_t n = craft_gguf(&o, &g, &l);
    static const uint32_t ndims[] = {0, 3, 5, 64, UINT32_MAX};
    for (size_t i = 0; i < sizeof ndims / sizeof *ndims; i++)
        try_u32("bad n_dims", g, n, l.ti_ndims[0], ndims[i], i == 1 ? MUST_FAIL : MUST_FAIL);
    static const uint64_t dims[] = {0, 1000, 1ull << 32, 1ull << 62, INT64_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++)
        try_u64("bad dimension", g, n, l.ti_dim0[0], dims[i], dims[i] == 0 ? MAY_PASS : MUST_FAIL);
    static const uint64_t offs[] = {1, 31, 32, 64, 128, 4096, 1ull << 40, UINT64_MAX - 31, UINT64_MAX};
    for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
        try_u64("wrong first tensor offset", g, n, l.ti_offset[0], offs[i], MUST_FAIL);
        try_u64("wrong second tensor offset", g, n, l.ti_offset[1], offs[i], offs[i] == 96 ? MAY_PASS : MUST_FAIL);
    }
    try_u64("overlapping tensors", g, n, l.ti_offset[1], 0, MUST_FAIL);
    free(g);
}

/* Well-formed files whose known keys have the wrong type or value: the reader must not
 * abort on them (gguf_get_val_* would), and neither may anything after it. */
static void test_wrong_key_types(void **state)
{
    static const struct {
        const char *what;
        struct craft_opts o;
        enum expect ex;
    } cases[] = {
        {"architecture as u32", {.arch_as_u32 = 1}, MAY_PASS},
        {"file_type as string", {.file_type_as_str = 1}, MAY_PASS},
        {"context_length as string", {.ctx_as_str = 1}, MAY_PASS},
        {"head_count as strings", {.head_count_strs = 1}, MAY_PASS},
        {"block_count as f32", {.block_count_f32 = 1}, MAY_PASS},
        {"tokens as u32", {.tokens_as_u32 = 1}, MAY_PASS},
        {"chat_template as array", {.template_as_arr = 1}, MAY_PASS},
        {"nested array", {.nested_array = 1}, MAY_PASS},
        {"alignment 3", {.alignment = 3}, MUST_FAIL},
        {"alignment 64", {.alignment = 64}, MAY_PASS},
        {"alignment as string", {.alignment = -1}, MUST_FAIL},
        {"duplicate key", {.dup_key = 1}, MUST_FAIL},
        {"duplicate tensor", {.dup_tensor = 1}, MUST_FAIL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t *g;
        struct craft_layout l;
        size_t n = craft_gguf(&cases[i].o, &g, &l);
        assert_true(n > 0);
        try_file(cases[i].what, g, n, cases[i].ex);
        free(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_lengths_and_types),
        cmocka_unit_test(test_tensors),
        cmocka_unit_test(test_wrong_key_types),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
