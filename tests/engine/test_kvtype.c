/* test_kvtype.c -- KV cache types (issue 15 item 3: BELLOWS_KV_CACHE_TYPE) in the engine,
 * on llama.cpp's random models (build/models/archs, token prompts: they have no
 * vocabulary; heads of 128, which a quantized block of 32 divides):
 *   bytes:   q8_0 and q4_0 pools hold ~0.53 and ~0.28 of f16's bytes per cell, the same
 *            bytes libllama's own sequence states measure in a context of that type, and a
 *            saved state (the pool's real cells) shrinks alike;
 *   growth:  a quantized pool grows in place under three live requests, and each gives the
 *            tokens of a cold solo run of the same type;
 *   prefix:  a next turn and the same prompt again reuse the cache and give a cold run's
 *            tokens -- both on full attention, sliding window, MLA and a hybrid;
 *   setup:   a state saved in another type is never loaded (its setup key differs);
 *   refusal: a quantized type without flash attention, or on heads of 16 (the demo model),
 *            runs f16; an unknown type fails engine_new.
 * Flash attention is on throughout (a quantized V needs it); the cold runs use the same pool
 * size and layout (one sequence from cell 0), so the comparisons are exact. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/engine.h"
#include "llama.h"
#include "util/log.h"

#define ARCHS BELLOWS_TEST_MODELS "/archs/"
#define LLAMA ARCHS "llama-dense.gguf"
#define MAX_REQ 8
#define MAX_TOK 512
#define N_PREDICT 12

struct res {
    uint64_t id;
    bool done, failed;
    int32_t tok[MAX_TOK];
    int n;
    struct engine_stats st;
    char err[160];
};

struct coll {
    struct res r[MAX_REQ];
};

static struct res *res_for(struct coll *c, uint64_t id)
{
    for (int i = 0; i < MAX_REQ; i++)
        if (c->r[i].id == id)
            return &c->r[i];
    for (int i = 0; i < MAX_REQ; i++)
        if (!c->r[i].id) {
            c->r[i].id = id;
            return &c->r[i];
        }
    fail_msg("too many requests");
    return NULL;
}

static void on_event(void *ud, const struct engine_event *ev)
{
    struct res *r = res_for(ud, ev->req_id);
    if (ev->type == ENGINE_EV_DONE) {
        r->done = true;
        r->st = *ev->stats;
        assert_non_null(ev->tokens);
        assert_true(ev->n_tokens <= MAX_TOK);
        memcpy(r->tok, ev->tokens, (size_t)ev->n_tokens * sizeof *r->tok);
        r->n = ev->n_tokens;
    } else if (ev->type == ENGINE_EV_ERROR) {
        r->done = r->failed = true;
        snprintf(r->err, sizeof r->err, "%.*s", (int)ev->len, ev->text);
    }
}

static struct coll C;

struct opts {
    const char *model, *kv_type, *kv_dir;
    int min_pool;
    bool fa_off;
};

static struct engine *open_engine(const struct opts *o)
{
    struct engine_params p;
    engine_params_default(&p);
    p.model_path = o->model ? o->model : LLAMA;
    p.n_parallel = 4;
    p.n_threads = 2;
    p.flash_attn = !o->fa_off;
    p.min_pool_cells = o->min_pool ? o->min_pool : 1024;
    p.kv_type = o->kv_type;
    p.kv_disk_dir = o->kv_dir;
    p.kv_disk_budget = o->kv_dir ? (uint64_t)1 << 30 : 0;
    p.kv_disk_model_key = o->kv_dir ? "kvtype-test" : NULL;
    struct engine *e = NULL;
    struct bw_err err = {0};
    if (engine_new(&p, on_event, &C, &e, &err) != BW_OK)
        fail_msg("engine_new (%s, %s): %s", p.model_path, o->kv_type ? o->kv_type : "f16", err.msg);
    return e;
}

static void submit(struct engine *e, uint64_t id, const int32_t *toks, int n)
{
    struct engine_request r = {0};
    r.req_id = id;
    r.kind = ENGINE_GENERATE;
    r.prompt = "";
    r.raw = true;
    sampling_params_default(&r.sampling);
    r.sampling.temperature = 0.0f;
    r.sampling.repeat_penalty = 1.0f;
    r.num_predict = N_PREDICT;
    r.context = toks;
    r.n_context = n;
    r.want_context = true;
    struct bw_err err = {0};
    if (engine_submit(e, &r, &err) != BW_OK)
        fail_msg("submit %llu: %s", (unsigned long long)id, err.msg);
    memset(res_for(&C, id), 0, sizeof(struct res));
    res_for(&C, id)->id = id;
}

static void run_all(struct engine *e)
{
    for (int s = 0; engine_has_work(e) && s < 100000; s++)
        if (engine_step(e) != BW_OK)
            fail_msg("engine_step failed");
    assert_false(engine_has_work(e));
}

static struct res *get(uint64_t id)
{
    struct res *r = res_for(&C, id);
    if (!r->done || r->failed)
        fail_msg("request %llu: %s", (unsigned long long)id, r->failed ? r->err : "not done");
    return r;
}

/* A fresh engine of kv_type, one request. */
static const char *cold_model; /* NULL: llama-dense */

static void cold(const char *kv_type, const int32_t *toks, int n, struct res *out)
{
    struct opts o = {.model = cold_model, .kv_type = kv_type};
    struct engine *e = open_engine(&o);
    submit(e, 900, toks, n);
    run_all(e);
    *out = *get(900);
    memset(res_for(&C, 900), 0, sizeof(struct res));
    engine_free(e);
}

static void same_tokens(const char *what, const char *type, const struct res *a, const struct res *b)
{
    if (a->n != b->n || memcmp(a->tok, b->tok, (size_t)a->n * sizeof *a->tok)) {
        int k = 0;
        while (k < a->n && k < b->n && a->tok[k] == b->tok[k])
            k++;
        fail_msg("%s (%s): tokens differ (lengths %d and %d, first difference at %d)", what, type, a->n, b->n, k);
    }
}

static void rand_tokens(uint32_t seed, int32_t *out, int n)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        out[i] = (int32_t)((seed >> 16) % 128u);
    }
}

static void status_of(const struct opts *o, struct engine_status *st)
{
    struct engine *e = open_engine(o);
    engine_status(e, st);
    engine_free(e);
}

/* ---- bytes per cell ------------------------------------------------------------------- */

/* What one more cell costs a sequence's state in a context of type t (libllama's own
 * figure: K and V rows of every layer, plus a few bytes of position per cell). */
static uint64_t measured_per_cell(const char *path, enum ggml_type t)
{
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *m = llama_model_load_from_file(path, mp);
    assert_non_null(m);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 256;
    cp.n_seq_max = 1;
    cp.swa_full = true;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    cp.type_k = cp.type_v = t;
    cp.n_threads = cp.n_threads_batch = 2;
    struct llama_context *ctx = llama_init_from_model(m, cp);
    assert_non_null(ctx);
    int32_t toks[24];
    rand_tokens(7, toks, 24);
    size_t size[2];
    for (int k = 0; k < 2; k++) {
        int from = k ? 8 : 0, to = k ? 24 : 8;
        struct llama_batch b = llama_batch_init(to - from, 0, 1);
        for (int i = from; i < to; i++) {
            int j = b.n_tokens++;
            b.token[j] = toks[i];
            b.pos[j] = i;
            b.n_seq_id[j] = 1;
            b.seq_id[j][0] = 0;
            b.logits[j] = i == to - 1;
        }
        assert_int_equal(llama_decode(ctx, b), 0);
        llama_batch_free(b);
        size[k] = llama_state_seq_get_size(ctx, 0);
    }
    llama_free(ctx);
    llama_model_free(m);
    return (uint64_t)(size[1] - size[0]) / 16;
}

static void quantized_pools_hold_their_share_of_f16_bytes(void **state)
{
    (void)state;
    static const char *const models[] = {LLAMA, ARCHS "gemma2-dense.gguf", ARCHS "qwen3-dense.gguf"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        if (access(models[i], R_OK) != 0)
            fail_msg("%s is missing: build the arch_models target", models[i]);
        struct engine_status f16, q8, q4;
        status_of(&(struct opts){.model = models[i]}, &f16);
        status_of(&(struct opts){.model = models[i], .kv_type = "q8_0"}, &q8);
        status_of(&(struct opts){.model = models[i], .kv_type = "q4_0"}, &q4);
        assert_string_equal(f16.kv_type, "f16");
        assert_string_equal(q8.kv_type, "q8_0");
        assert_string_equal(q4.kv_type, "q4_0");
        uint64_t a16 = f16.kv_bytes_per_cell + f16.swa_bytes_per_cell;
        uint64_t a8 = q8.kv_bytes_per_cell + q8.swa_bytes_per_cell, a4 = q4.kv_bytes_per_cell + q4.swa_bytes_per_cell;
        assert_true(a16 > 0);
        /* 34 / 64 and 18 / 64 of f16's bytes: blocks of 32 elements in 34 and 18 bytes */
        assert_int_equal(a8 * 64, a16 * 34);
        assert_int_equal(a4 * 64, a16 * 18);
        /* libllama's own states agree (+ a few bytes of cell metadata per cache) */
        uint64_t m16 = measured_per_cell(models[i], GGML_TYPE_F16), m8 = measured_per_cell(models[i], GGML_TYPE_Q8_0),
                 m4 = measured_per_cell(models[i], GGML_TYPE_Q4_0);
        if (m8 < a8 || m8 > a8 + 32 || m4 < a4 || m4 > a4 + 32 || m16 < a16 || m16 > a16 + 32)
            fail_msg("%s: measured %llu / %llu / %llu bytes per cell, the engine says %llu / %llu / %llu", models[i],
                     (unsigned long long)m16, (unsigned long long)m8, (unsigned long long)m4,
                     (unsigned long long)a16, (unsigned long long)a8, (unsigned long long)a4);
        print_message("%-40s per cell: f16 %llu, q8_0 %llu (%.3f), q4_0 %llu (%.3f)\n", models[i],
                      (unsigned long long)a16, (unsigned long long)a8, (double)a8 / (double)a16,
                      (unsigned long long)a4, (double)a4 / (double)a16);
    }
}

/* ---- growth and prefix reuse ---------------------------------------------------------- */

/* On each memory kind: full attention (llama), sliding window (gemma2), MLA (deepseek2),
 * hybrid (qwen35: recurrent layers stay F32, through checkpoints). */
static const char *const kind_models[] = {LLAMA, ARCHS "gemma2-dense.gguf", ARCHS "deepseek2-moe.gguf",
                                          ARCHS "qwen35-dense.gguf"};

static void quantized_pools_grow_in_place_and_reuse_prefixes(void **state)
{
    const char *model = *state;
    static const char *const types[] = {"f16", "q8_0", "q4_0"};
    int32_t P[64], Q[32], X[16], T2[MAX_TOK], T3[64];
    rand_tokens(1, P, 64);
    rand_tokens(2, Q, 32);
    rand_tokens(3, X, 16);
    memcpy(T3, P, 32 * sizeof *T3);
    memcpy(T3 + 32, Q, 32 * sizeof *T3);
    struct res *cP = calloc(1, sizeof *cP), *cT2 = calloc(1, sizeof *cT2), *cT3 = calloc(1, sizeof *cT3);
    if (access(model, R_OK) != 0)
        fail_msg("%s is missing: build the arch_models target", model);
    cold_model = model;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const char *ty = types[t];
        cold(ty, P, 64, cP);
        assert_int_equal(cP->n, 64 + N_PREDICT);
        int n2 = cP->n;
        memcpy(T2, cP->tok, (size_t)n2 * sizeof *T2);
        memcpy(T2 + n2, X, sizeof X);
        n2 += 16;
        cold(ty, T2, n2, cT2);
        cold(ty, T3, 64, cT3);

        /* prefix: a chat's turns in one engine */
        struct engine *e = open_engine(&(struct opts){.model = model, .kv_type = ty});
        submit(e, 1, P, 64);
        run_all(e);
        same_tokens("first turn", ty, get(1), cP);
        submit(e, 2, T2, n2);
        run_all(e);
        same_tokens("next turn (through the cache)", ty, get(2), cT2);
        assert_int_equal(get(2)->st.prompt_cache_tokens, 64 + N_PREDICT - 1);
        submit(e, 3, P, 64);
        run_all(e);
        same_tokens("same prompt again", ty, get(3), cP);
        assert_true(get(3)->st.prompt_cache_tokens >= 60); /* 63, or a checkpoint 4 before the end */
        engine_free(e);

        /* growth: one small pool, three live requests */
        memset(&C, 0, sizeof C);
        e = open_engine(&(struct opts){.model = model, .kv_type = ty, .min_pool = 256});
        struct engine_status st;
        submit(e, 21, P, 64);
        submit(e, 22, T2, n2);
        submit(e, 23, T3, 64);
        run_all(e);
        engine_status(e, &st);
        assert_true(st.pool_growths > 0);
        assert_string_equal(st.kv_type, ty);
        if (!st.swa_bytes_per_cell)
            assert_int_equal(st.kv_bytes, (uint64_t)st.pool_cells * st.kv_bytes_per_cell);
        same_tokens("growth (P)", ty, get(21), cP);
        same_tokens("growth (T2)", ty, get(22), cT2);
        same_tokens("growth (T3)", ty, get(23), cT3);
        print_message("%-40s %-5s (%s) pool grew %d time(s) to %d cells, %llu bytes of KV\n", model, ty,
                      st.memory_kind, st.pool_growths, st.pool_cells, (unsigned long long)st.kv_bytes);
        engine_free(e);
        memset(&C, 0, sizeof C);
    }
    cold_model = NULL;
    free(cP);
    free(cT2);
    free(cT3);
}

/* ---- saved states are of one type ------------------------------------------------------ */

static char tmpdir[64];

/* Bytes of the .kv files in tmpdir. */
static uint64_t saved_bytes(int *n_files)
{
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    uint64_t sum = 0;
    *n_files = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t l = strlen(de->d_name);
        if (l < 3 || strcmp(de->d_name + l - 3, ".kv"))
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0) {
            sum += (uint64_t)sb.st_size;
            (*n_files)++;
        }
    }
    closedir(d);
    return sum;
}

static void clear_dir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
        unlink(p);
    }
    closedir(d);
}

/* Runs P in an engine of type ty on tmpdir and frees it (which saves the cached sequence). */
static struct res run_saved(const char *ty, const int32_t *P, int n)
{
    struct engine *e = open_engine(&(struct opts){.kv_type = ty, .kv_dir = tmpdir});
    submit(e, 50, P, n);
    run_all(e);
    struct res r = *get(50);
    memset(res_for(&C, 50), 0, sizeof(struct res));
    engine_free(e);
    return r;
}

static void a_state_of_another_type_is_not_loaded(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bellows-kvtype-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    int32_t P[160];
    rand_tokens(9, P, 160);
    struct res *c8 = calloc(1, sizeof *c8);
    cold("q8_0", P, 160, c8);

    /* f16 saves its state; f16 again loads it (the control) */
    struct res r = run_saved("f16", P, 160);
    assert_int_equal(r.st.prompt_cache_tokens, 0);
    int files;
    uint64_t f16_bytes = saved_bytes(&files);
    assert_int_equal(files, 1);
    r = run_saved("f16", P, 160);
    assert_true(r.st.prompt_cache_tokens >= 128); /* from disk */
    clear_dir();

    /* the pool's real cells: a q8_0 state is ~0.53 of an f16 one (tokens and header aside) */
    r = run_saved("q8_0", P, 160);
    same_tokens("q8_0 with a disk cache", "q8_0", &r, c8);
    uint64_t q8_bytes = saved_bytes(&files);
    assert_int_equal(files, 1);
    print_message("saved state of %d tokens: f16 %llu bytes, q8_0 %llu (%.3f)\n", r.n, (unsigned long long)f16_bytes,
                  (unsigned long long)q8_bytes, (double)q8_bytes / (double)f16_bytes);
    assert_true(q8_bytes * 100 > f16_bytes * 50 && q8_bytes * 100 < f16_bytes * 58);
    clear_dir();

    /* an f16 state on disk, a q8_0 engine: not loaded, and the answer is q8_0's cold one */
    run_saved("f16", P, 160);
    r = run_saved("q8_0", P, 160);
    assert_int_equal(r.st.prompt_cache_tokens, 0);
    same_tokens("q8_0 beside an f16 state", "q8_0", &r, c8);
    /* and the other way round */
    r = run_saved("f16", P, 160);
    assert_true(r.st.prompt_cache_tokens >= 128); /* its own f16 state */
    clear_dir();
    rmdir(tmpdir);
    free(c8);
}

/* ---- where a quantized type cannot be used ---------------------------------------------- */

static void quantized_types_fall_back_to_f16_where_libllama_refuses_them(void **state)
{
    (void)state;
    struct engine_status st;
    status_of(&(struct opts){.kv_type = "q8_0", .fa_off = true}, &st);
    assert_string_equal(st.kv_type, "f16"); /* a quantized V needs flash attention */
    status_of(&(struct opts){.model = BELLOWS_TEST_MODELS "/demo.gguf", .kv_type = "q4_0"}, &st);
    assert_string_equal(st.kv_type, "f16"); /* heads of 16: not a multiple of the block */
    status_of(&(struct opts){.kv_type = "auto"}, &st);
    assert_string_equal(st.kv_type, "f16"); /* the scheduler settles auto; an engine alone runs f16 */

    struct engine_params p;
    engine_params_default(&p);
    p.model_path = LLAMA;
    p.kv_type = "q5_9";
    struct engine *e = NULL;
    struct bw_err err = {0};
    assert_int_equal(engine_new(&p, on_event, &C, &e, &err), BW_EINVAL);
    assert_null(e);
    assert_non_null(strstr(err.msg, "q5_9"));
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quantized_pools_hold_their_share_of_f16_bytes),
        cmocka_unit_test_prestate(quantized_pools_grow_in_place_and_reuse_prefixes, (void *)kind_models[0]),
        cmocka_unit_test_prestate(quantized_pools_grow_in_place_and_reuse_prefixes, (void *)kind_models[1]),
        cmocka_unit_test_prestate(quantized_pools_grow_in_place_and_reuse_prefixes, (void *)kind_models[2]),
        cmocka_unit_test_prestate(quantized_pools_grow_in_place_and_reuse_prefixes, (void *)kind_models[3]),
        cmocka_unit_test(a_state_of_another_type_is_not_loaded),
        cmocka_unit_test(quantized_types_fall_back_to_f16_where_libllama_refuses_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
