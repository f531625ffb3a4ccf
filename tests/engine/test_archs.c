/* test_archs.c -- the architecture matrix (issue 18): the engine's pool and prefix cache on
 * the memory kinds people run -- full attention, sliding window, MLA, MoE, recurrent and
 * hybrid -- against llama.cpp's own random models (tools/CMakeLists.txt: test-llama-archs
 * -o, built from the pinned source into build/models/archs).
 *
 * These models have no vocabulary: every request is a token prompt (an empty prompt, the
 * tokens in `context`), and the answer's tokens come back in DONE (want_context). Each
 * property is exact, greedy decoding with flash attention off (the CPU flash-attention
 * kernel's accumulation order depends on the pool layout; see test_engine.c):
 *   same:     the same request twice gives the same tokens (the second through the cache);
 *   growth:   a pool that grows while three requests run gives the tokens of cold solo runs;
 *   prefix:   a next turn, and a shorter shared prefix, give the tokens of a cold run;
 *   reuse:    on every memory kind (recurrent, hybrid and sliding-window ones through state
 *             checkpoints) a turn that shares a prompt evaluates only its new tokens: the
 *             same prompt again, an edited turn (the answer replaced), and a copy from a live
 *             sequence each start from the shared prefix (prompt_cache_tokens) and still give
 *             the tokens of a cold run; with checkpoints off they do not;
 *   memory:   the engine's bytes per cell of the attention caches (full and sliding-window,
 *             MLA's latent) equal what libllama's sequence states measure, and its recurrent
 *             state per sequence equals a checkpoint's size;
 *   parallel: requests in one batch, and one copied from a live sequence, give their solo tokens;
 *   cancel:   a cancelled request leaves nothing live, and the next one is exact.
 * And text requests fail with "this model has no tokenizer" instead of aborting. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/ckpt.h"
#include "engine/engine.h"
#include "llama.h"
#include "util/log.h"

#define ARCHS BELLOWS_TEST_MODELS "/archs/"
#define MAX_REQ 8
#define MAX_TOK 4096
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
    assert_false(r->done);
    if (ev->type == ENGINE_EV_TEXT)
        assert_int_equal(ev->len, 0); /* no vocabulary: no text */
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

struct fx {
    char path[512];
    const char *arch;
    struct coll c;
    struct engine *e;
};

static struct engine *open_engine_ck(struct fx *f, int min_pool, int64_t ckpt_max_bytes)
{
    struct engine_params p;
    engine_params_default(&p);
    p.model_path = f->path;
    p.n_parallel = 4;
    p.n_threads = 2;
    p.flash_attn = false;
    p.min_pool_cells = min_pool;
    p.ckpt_max_bytes = ckpt_max_bytes;
    struct engine *e = NULL;
    struct bw_err err = {0};
    int rc = engine_new(&p, on_event, &f->c, &e, &err);
    if (rc)
        fail_msg("%s: engine_new: %s", f->arch, err.msg);
    assert_false(engine_has_vocab(e));
    return e;
}

static struct engine *open_engine(struct fx *f, int min_pool) { return open_engine_ck(f, min_pool, 0); }

static void submit(struct fx *f, struct engine *e, uint64_t id, const int32_t *toks, int n, int num_predict)
{
    struct engine_request r = {0};
    r.req_id = id;
    r.kind = ENGINE_GENERATE;
    r.prompt = "";
    r.raw = true;
    sampling_params_default(&r.sampling);
    r.sampling.temperature = 0.0f;
    r.sampling.repeat_penalty = 1.0f;
    r.num_predict = num_predict;
    r.context = toks;
    r.n_context = n;
    r.want_context = true;
    struct bw_err err = {0};
    int rc = engine_submit(e, &r, &err);
    if (rc)
        fail_msg("%s: submit %llu: %s", f->arch, (unsigned long long)id, err.msg);
    memset(res_for(&f->c, id), 0, sizeof(struct res));
    res_for(&f->c, id)->id = id;
}

static void run_all(struct fx *f, struct engine *e)
{
    for (int s = 0; engine_has_work(e) && s < 100000; s++)
        if (engine_step(e) != BW_OK)
            fail_msg("%s: engine_step failed", f->arch);
    assert_false(engine_has_work(e));
}

static struct res *get(struct fx *f, uint64_t id)
{
    struct res *r = res_for(&f->c, id);
    if (!r->done || r->failed)
        fail_msg("%s: request %llu: %s", f->arch, (unsigned long long)id, r->failed ? r->err : "not done");
    return r;
}

/* A cold run: a fresh engine, one request. */
static void cold(struct fx *f, const int32_t *toks, int n, int num_predict, struct res *out)
{
    struct engine *e = open_engine(f, 1024);
    submit(f, e, 900, toks, n, num_predict);
    run_all(f, e);
    *out = *get(f, 900);
    memset(res_for(&f->c, 900), 0, sizeof(struct res));
    engine_free(e);
}

static void same_tokens(struct fx *f, const char *what, const struct res *a, const struct res *b)
{
    if (a->n != b->n || memcmp(a->tok, b->tok, (size_t)a->n * sizeof *a->tok)) {
        int k = 0;
        while (k < a->n && k < b->n && a->tok[k] == b->tok[k])
            k++;
        fail_msg("%s: %s: tokens differ (lengths %d and %d, first difference at %d)", f->arch, what, a->n, b->n, k);
    }
}

static void rand_tokens(uint32_t seed, int32_t *out, int n)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        out[i] = (int32_t)((seed >> 16) % 128u);
    }
}

static void no_live(struct fx *f, struct engine *e)
{
    struct engine_status st;
    engine_status(e, &st);
    if (st.live || st.queued || st.used_cells != st.reserved_cells)
        fail_msg("%s: left live=%d queued=%d used=%d reserved=%d", f->arch, st.live, st.queued, st.used_cells,
                 st.reserved_cells);
}

/* ---- memory by kind: the engine's figures against libllama's own states ---------------- */

/* Decodes toks[from..to) into sequence 0 of ctx. */
static void decode_range(struct llama_context *ctx, const int32_t *toks, int from, int to)
{
    struct llama_batch b = llama_batch_init(to - from, 0, 1);
    for (int i = from; i < to; i++) {
        int k = b.n_tokens++;
        b.token[k] = toks[i];
        b.pos[k] = i;
        b.n_seq_id[k] = 1;
        b.seq_id[k][0] = 0;
        b.logits[k] = i == to - 1;
    }
    assert_int_equal(llama_decode(ctx, b), 0);
    llama_batch_free(b);
}

/* A sequence's state grows by exactly the attention caches' bytes of each new cell (plus 8
 * bytes of position and sequence count per cache holding it), and its partial state is
 * the recurrent state: both measured in a context of our own with every SWA cell kept. */
static void check_memory(struct fx *f, const struct engine_status *st, const int32_t *toks)
{
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *m = llama_model_load_from_file(f->path, mp);
    assert_non_null(m);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 256;
    cp.n_seq_max = 1;
    cp.swa_full = true;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.n_threads = cp.n_threads_batch = 2;
    struct llama_context *ctx = llama_init_from_model(m, cp);
    assert_non_null(ctx);
    /* within the window (n_swa = 32 in these models): no cell is dropped yet */
    decode_range(ctx, toks, 0, 8);
    size_t s1 = llama_state_seq_get_size(ctx, 0);
    decode_range(ctx, toks, 8, 24);
    size_t s2 = llama_state_seq_get_size(ctx, 0);
    size_t part = llama_state_seq_get_size_ext(ctx, 0, LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY);
    uint64_t per_cell = (uint64_t)(s2 - s1) / 16;
    uint64_t attn = st->kv_bytes_per_cell + st->swa_bytes_per_cell;
    uint64_t meta = (attn ? 8u : 0u) * (st->swa_bytes_per_cell && st->kv_bytes_per_cell ? 2u : 1u);
    if (per_cell + 8 < attn + meta || per_cell > attn + meta + 8 + attn / 100)
        fail_msg("%s: measured %llu bytes per cell, the engine says %llu (+%llu)", f->arch,
                 (unsigned long long)per_cell, (unsigned long long)attn, (unsigned long long)meta);
    uint64_t rs = st->recurrent_bytes / (uint64_t)st->n_parallel;
    if (rs) {
        /* a hybrid with sliding-window attention (LFM2) checkpoints its window cells too */
        size_t win = st->swa_bytes_per_cell ? 24 * (size_t)(st->swa_bytes_per_cell + 8) : 0;
        size_t rs_part = part > win ? part - win : 0;
        uint64_t lo = rs_part > 1024 ? rs_part - rs_part / 100 - 512 : 0;
        if (rs < lo || rs > rs_part)
            fail_msg("%s: a partial state is %zu bytes (%zu of them window cells), the engine says %llu per sequence",
                     f->arch, part, win, (unsigned long long)rs);
    }
    print_message("%-28s memory %s: %llu B/cell full, %llu B/cell swa, %llu B recurrent/seq (state %zu B)\n",
                  f->arch, st->memory_kind, (unsigned long long)st->kv_bytes_per_cell,
                  (unsigned long long)st->swa_bytes_per_cell, (unsigned long long)rs, part);
    llama_free(ctx);
    llama_model_free(m);
}

static bool kind_needs_checkpoints(const char *kind)
{
    return !strcmp(kind, "swa") || !strcmp(kind, "recurrent") || !strcmp(kind, "hybrid");
}

/* ---- the matrix, one architecture per test --------------------------------------------- */

static void test_arch(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->arch = *state;
    snprintf(f->path, sizeof f->path, ARCHS "%s", f->arch);
    if (access(f->path, R_OK) != 0)
        fail_msg("%s is missing: build the arch_models target", f->path);

    int32_t P[64], Q[32], X[16], T2[MAX_TOK], T3[64], T4[96], T5[80];
    rand_tokens(1, P, 64);
    rand_tokens(2, Q, 32);
    rand_tokens(3, X, 16);

    /* Cold references. */
    struct res *cP = calloc(1, sizeof *cP), *cT2 = calloc(1, sizeof *cT2), *cT3 = calloc(1, sizeof *cT3),
               *cT4 = calloc(1, sizeof *cT4), *cT5 = calloc(1, sizeof *cT5);
    cold(f, P, 64, N_PREDICT, cP);
    assert_int_equal(cP->n, 64 + N_PREDICT);
    /* turn 2: the whole first exchange, then new tokens */
    int n2 = cP->n;
    memcpy(T2, cP->tok, (size_t)n2 * sizeof *T2);
    memcpy(T2 + n2, X, sizeof X);
    n2 += 16;
    cold(f, T2, n2, N_PREDICT, cT2);
    /* a shorter shared prefix: P's first 32 tokens, then others */
    memcpy(T3, P, 32 * sizeof *T3);
    memcpy(T3 + 32, Q, 32 * sizeof *T3);
    cold(f, T3, 64, N_PREDICT, cT3);
    /* P, then more: what a live copy serves */
    memcpy(T4, P, 64 * sizeof *T4);
    memcpy(T4 + 64, Q, 32 * sizeof *T4);
    cold(f, T4, 96, N_PREDICT, cT4);
    /* an edited turn 2: P, then new tokens instead of the answer */
    memcpy(T5, P, 64 * sizeof *T5);
    memcpy(T5 + 64, X, 16 * sizeof *T5);
    if (T5[64] == cP->tok[64])
        T5[64] = (T5[64] + 1) % 128; /* share exactly P with turn 2 */
    cold(f, T5, 80, N_PREDICT, cT5);

    /* BELLOWS_ARCHS_SENSITIVITY=1: prints which of a change at position 0, 32, 62 of P changes
     * its answer (bits 1, 2, 4): a 0 means this model's tokens cannot tell a wrong prefix
     * state from a right one (tune its weight std in tools/CMakeLists.txt). */
    if (getenv("BELLOWS_ARCHS_SENSITIVITY")) {
        int32_t P2[64];
        struct res *o = calloc(1, sizeof *o);
        int diff_at[3] = {0, 32, 62}, d = 0;
        for (int k = 0; k < 3; k++) {
            memcpy(P2, P, sizeof P2);
            P2[diff_at[k]] = (P2[diff_at[k]] + 1) % 128;
            cold(f, P2, 64, N_PREDICT, o);
            if (memcmp(o->tok + 64, cP->tok + 64, N_PREDICT * sizeof(int32_t)))
                d |= 1 << k;
        }
        print_message("%s sensitivity mask %d\n", f->arch, d);
        free(o);
    }

    /* same + prefix: one engine, a chat's turns */
    struct engine *e = open_engine(f, 1024);
    submit(f, e, 1, P, 64, N_PREDICT);
    run_all(f, e);
    same_tokens(f, "same (first)", get(f, 1), cP);
    submit(f, e, 2, P, 64, N_PREDICT);
    run_all(f, e);
    same_tokens(f, "same (again, through the cache)", get(f, 2), cP);
    /* 63 where the memory can be trimmed, the checkpoint CKPT_TAIL before the end elsewhere */
    if (get(f, 2)->st.prompt_cache_tokens < 64 - CKPT_TAIL)
        fail_msg("%s: the same prompt again reused %d tokens, not >= %d", f->arch, get(f, 2)->st.prompt_cache_tokens,
                 64 - CKPT_TAIL);
    submit(f, e, 3, T2, n2, N_PREDICT);
    run_all(f, e);
    same_tokens(f, "prefix (next turn)", get(f, 3), cT2);
    int turn_cached = get(f, 3)->st.prompt_cache_tokens;
    assert_int_equal(turn_cached, 64 + N_PREDICT - 1); /* all the history held (the last answer token is new) */
    submit(f, e, 5, T5, 80, N_PREDICT);
    run_all(f, e);
    same_tokens(f, "reuse (edited turn)", get(f, 5), cT5);
    if (get(f, 5)->st.prompt_cache_tokens != 64)
        fail_msg("%s: the edited turn reused %d tokens, not the 64 it shares", f->arch, get(f, 5)->st.prompt_cache_tokens);
    struct engine_status st;
    engine_status(e, &st);
    if (kind_needs_checkpoints(st.memory_kind)) {
        assert_true(st.checkpoints > 0);
        assert_true(st.checkpoint_bytes > 0);
    } else {
        assert_int_equal(st.checkpoints, 0);
    }
    check_memory(f, &st, P);
    submit(f, e, 4, T3, 64, N_PREDICT);
    run_all(f, e);
    same_tokens(f, "prefix (shorter shared prefix)", get(f, 4), cT3);
    no_live(f, e);
    engine_free(e);

    /* parallel: three in one batch; then one admitted while a sequence with its prefix is live */
    memset(&f->c, 0, sizeof f->c);
    e = open_engine(f, 1024);
    submit(f, e, 11, P, 64, N_PREDICT);
    submit(f, e, 12, T2, n2, N_PREDICT);
    submit(f, e, 13, T3, 64, N_PREDICT);
    run_all(f, e);
    same_tokens(f, "parallel (P)", get(f, 11), cP);
    same_tokens(f, "parallel (T2)", get(f, 12), cT2);
    same_tokens(f, "parallel (T3)", get(f, 13), cT3);
    no_live(f, e);
    engine_free(e);
    memset(&f->c, 0, sizeof f->c);
    e = open_engine(f, 1024);
    submit(f, e, 15, P, 64, 40);
    for (int s = 0; s < 4; s++)
        engine_step(e); /* P prefilled and generating: live, longer than P */
    submit(f, e, 16, T4, 96, N_PREDICT);
    run_all(f, e);
    same_tokens(f, "parallel (copied from a live sequence)", get(f, 16), cT4);
    if (get(f, 16)->st.prompt_cache_tokens != 64)
        fail_msg("%s: the copy from a live sequence reused %d tokens, not the 64 it shares", f->arch,
                 get(f, 16)->st.prompt_cache_tokens);
    no_live(f, e);
    engine_free(e);

    /* the same turns with checkpoints off: exact still, but what cannot be trimmed is re-read */
    memset(&f->c, 0, sizeof f->c);
    e = open_engine_ck(f, 1024, -1);
    submit(f, e, 17, P, 64, N_PREDICT);
    run_all(f, e);
    submit(f, e, 18, T5, 80, N_PREDICT);
    run_all(f, e);
    same_tokens(f, "reuse (edited turn, no checkpoints)", get(f, 18), cT5);
    /* (A sliding window is re-read only past its cache, n_swa x 4 + 512 cells, longer than
     * these models' 256-token context: on them it never needs a checkpoint.) */
    bool recurrent = !strcmp(st.memory_kind, "recurrent") || !strcmp(st.memory_kind, "hybrid");
    if (recurrent ? get(f, 18)->st.prompt_cache_tokens >= 64 : get(f, 18)->st.prompt_cache_tokens != 64)
        fail_msg("%s (%s): without checkpoints the edited turn reused %d tokens", f->arch, st.memory_kind,
                 get(f, 18)->st.prompt_cache_tokens);
    no_live(f, e);
    engine_free(e);

    /* growth: a pool of one reservation grows under three live requests */
    memset(&f->c, 0, sizeof f->c);
    e = open_engine(f, 256);
    submit(f, e, 21, P, 64, N_PREDICT);
    submit(f, e, 22, T2, n2, N_PREDICT);
    submit(f, e, 23, T3, 64, N_PREDICT);
    run_all(f, e);
    engine_status(e, &st);
    assert_true(st.pool_growths > 0);
    same_tokens(f, "growth (P)", get(f, 21), cP);
    same_tokens(f, "growth (T2)", get(f, 22), cT2);
    same_tokens(f, "growth (T3)", get(f, 23), cT3);

    /* cancel: mid-generation; nothing stays live and the next request is exact */
    submit(f, e, 31, T4, 96, 60);
    for (int s = 0; s < 5; s++)
        engine_step(e);
    assert_int_equal(engine_cancel(e, 31), BW_OK);
    run_all(f, e);
    assert_string_equal(get(f, 31)->st.done_reason, "cancel");
    no_live(f, e);
    submit(f, e, 32, T4, 96, N_PREDICT);
    run_all(f, e);
    same_tokens(f, "cancel (then the same prompt)", get(f, 32), cT4);
    no_live(f, e);

    /* no tokenizer: text requests are refused, not aborted */
    struct engine_request r = {0};
    r.req_id = 41;
    r.kind = ENGINE_GENERATE;
    r.prompt = "hello";
    sampling_params_default(&r.sampling);
    struct bw_err err = {0};
    assert_int_equal(engine_submit(e, &r, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "no tokenizer"));
    struct policy_msg m = {.role = "user", .content = "hi"};
    r.kind = ENGINE_CHAT;
    r.msgs = &m;
    r.n_msgs = 1;
    assert_int_equal(engine_submit(e, &r, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "no tokenizer"));
    r.kind = ENGINE_EMBED;
    r.prompt = "hello";
    assert_int_equal(engine_submit(e, &r, &err), BW_EINVAL);
    int32_t *toks = NULL;
    int n = 0;
    assert_int_equal(engine_tokenize(e, "hello", true, &toks, &n), BW_EINVAL);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(engine_detokenize(e, P, 4, &text, &len), BW_EINVAL);
    engine_free(e);

    print_message("%-28s ok (next turn reused %d of %d prompt tokens)\n", f->arch, turn_cached, n2);
    free(cP);
    free(cT2);
    free(cT3);
    free(cT4);
    free(cT5);
    free(f);
}

/* ---- a sliding window past its cache ------------------------------------------------------ */

/* A copy of an SWA fixture whose context_length is 4096 instead of 256 (the u32 is rewritten
 * in place: no offset moves), so a conversation can outgrow the window's cache
 * (n_swa x 4 + 512 cells): the fixtures' own context never does. */
static void long_context_copy(const char *src, const char *arch, const char *dst)
{
    FILE *in = fopen(src, "rb");
    assert_non_null(in);
    fseek(in, 0, SEEK_END);
    long len = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len);
    assert_true(fread(b, 1, (size_t)len, in) == (size_t)len);
    fclose(in);
    char key[64];
    int kl = snprintf(key, sizeof key, "%s.context_length", arch);
    unsigned char *at = memmem(b, (size_t)len, key, (size_t)kl);
    assert_non_null(at);
    uint32_t type, value = 4096;
    memcpy(&type, at + kl, 4);
    assert_int_equal(type, 4); /* GGUF_TYPE_UINT32 */
    memcpy(at + kl + 4, &value, 4);
    FILE *out = fopen(dst, "wb");
    assert_non_null(out);
    assert_true(fwrite(b, 1, (size_t)len, out) == (size_t)len);
    fclose(out);
    free(b);
}

/* Issue 18, item 3: an edited turn that shares only the conversation's start, after the
 * window's cache has let those positions go, restarts from a checkpoint of the turn that
 * ended there, with the tokens of a cold run; without checkpoints it is re-read. */
static void swa_past_its_cache(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *file = *state;
    char arch[32], src[512];
    snprintf(arch, sizeof arch, "%.*s", (int)(strrchr(file, '-') - file), file); /* "gpt-oss-moe.gguf": gpt-oss */
    snprintf(src, sizeof src, ARCHS "%s", file);
    if (access(src, R_OK) != 0)
        fail_msg("%s is missing: build the arch_models target", src);
    snprintf(f->path, sizeof f->path, "/tmp/bellows-test-swa-%d-%s", (int)getpid(), file);
    long_context_copy(src, arch, f->path);
    f->arch = file;

    enum { N1 = 600, N2 = 1500, N3 = 100 };
    int32_t *R = malloc((N1 + N2 + N3) * sizeof *R);
    rand_tokens(11, R, N1 + N2 + N3);
    struct engine *e = open_engine(f, 4096);
    struct engine_status st;
    engine_status(e, &st);
    assert_string_equal(st.memory_kind, "swa");
    submit(f, e, 1, R, N1, 4); /* turn 1 */
    run_all(f, e);
    int n1 = get(f, 1)->n;
    int32_t *T2 = malloc((size_t)(n1 + N2) * sizeof *T2), *T3 = malloc((size_t)(n1 + N3) * sizeof *T3);
    memcpy(T2, get(f, 1)->tok, (size_t)n1 * sizeof *T2);
    memcpy(T2 + n1, R + N1, N2 * sizeof *T2);
    submit(f, e, 2, T2, n1 + N2, 4); /* turn 2: 1500 tokens more, well past the window's cache */
    run_all(f, e);
    assert_true(get(f, 2)->st.prompt_cache_tokens >= n1 - 1);
    /* turn 2 edited: the first exchange, then other tokens */
    memcpy(T3, get(f, 1)->tok, (size_t)n1 * sizeof *T3);
    memcpy(T3 + n1, R + N1 + N2, N3 * sizeof *T3);
    submit(f, e, 3, T3, n1 + N3, 4);
    run_all(f, e);
    struct res edited = *get(f, 3);
    no_live(f, e);
    engine_free(e);
    struct res *c3 = calloc(1, sizeof *c3);
    cold(f, T3, n1 + N3, 4, c3);
    same_tokens(f, "edited turn past the window's cache", &edited, c3);
    /* from turn 1's checkpoint (its prompt's end, or the answer's), not from scratch */
    if (edited.st.prompt_cache_tokens < N1 - CKPT_TAIL || edited.st.prompt_cache_tokens > n1)
        fail_msg("%s: the edited turn reused %d tokens, not turn 1's %d", f->arch, edited.st.prompt_cache_tokens, n1);

    /* without checkpoints the window cannot be rolled back that far: re-read */
    memset(&f->c, 0, sizeof f->c);
    e = open_engine_ck(f, 4096, -1);
    submit(f, e, 4, R, N1, 4);
    run_all(f, e);
    submit(f, e, 5, T2, n1 + N2, 4);
    run_all(f, e);
    submit(f, e, 6, T3, n1 + N3, 4);
    run_all(f, e);
    same_tokens(f, "edited turn, no checkpoints", get(f, 6), c3);
    if (get(f, 6)->st.prompt_cache_tokens >= N1 - CKPT_TAIL)
        fail_msg("%s: without checkpoints the edited turn reused %d tokens", f->arch, get(f, 6)->st.prompt_cache_tokens);
    engine_free(e);
    print_message("%-28s ok past the window's cache (edited turn reused %d of %d tokens)\n", f->arch,
                  edited.st.prompt_cache_tokens, n1 + N3);
    unlink(f->path);
    free(c3);
    free(T2);
    free(T3);
    free(R);
    free(f);
}

#define ARCH(file) cmocka_unit_test_prestate(test_arch, (void *)(file))

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        ARCH("llama-dense.gguf"),   ARCH("llama-moe.gguf"),       ARCH("qwen3-dense.gguf"),
        ARCH("phi3-dense.gguf"),    ARCH("gemma2-dense.gguf"),    ARCH("gpt-oss-moe.gguf"),
        ARCH("deepseek2-moe.gguf"), ARCH("mamba2-dense.gguf"),    ARCH("granitehybrid-dense.gguf"),
        ARCH("nemotron_h-dense.gguf"), ARCH("qwen35-dense.gguf"), ARCH("lfm2-dense.gguf"),
        ARCH("jamba-dense.gguf"),   ARCH("qwen3next-moe.gguf"),
        cmocka_unit_test_prestate(swa_past_its_cache, (void *)"gemma2-dense.gguf"),
        cmocka_unit_test_prestate(swa_past_its_cache, (void *)"gpt-oss-moe.gguf"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
