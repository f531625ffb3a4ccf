/* test_prep.c -- preparation off the loop (engine_prep.h) and long texts tokenized in pieces
 * (engine_tok.c), against the demo model.
 *   - pieces give exactly the tokens of one call: chats rendered by the model's template,
 *     and random mixes of special-token texts, their fragments, spaces and words;
 *   - a request prepared on the thread gives the same tokens and text as on the loop;
 *   - a small request submitted after a huge one finishes first;
 *   - a cancel while preparing ends the request with one DONE "cancel"; a preparation past
 *     its timeout ends with one ERROR BW_ETOOLONG. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/engine_int.h"
#include "engine/engine_prep.h"
#include "util/log.h"

#define DEMO BELLOWS_TEST_MODELS "/demo.gguf"
#define MAX_STEPS 200000

struct res {
    uint64_t id;
    int n_end;      /* DONE or ERROR events: must be 1 */
    bool failed;
    int err_code;
    char err[256];
    char done_reason[16];
    char *text;
    size_t len;
    int32_t *tokens;
    int n_tokens;
    int prompt_tokens;
    int order;      /* 1: first to end */
};
struct coll {
    struct res r[4];
    int n_ended;
};

static struct res *res_for(struct coll *c, uint64_t id)
{
    for (int i = 0; i < 4; i++)
        if (c->r[i].id == id || !c->r[i].id) {
            c->r[i].id = id;
            return &c->r[i];
        }
    fail_msg("too many requests");
    return NULL;
}

static void on_event(void *ud, const struct engine_event *ev)
{
    struct coll *c = ud;
    struct res *r = res_for(c, ev->req_id);
    assert_int_equal(r->n_end, 0); /* nothing after DONE or ERROR */
    if (ev->type == ENGINE_EV_TEXT || ev->type == ENGINE_EV_RENDERED) {
        r->text = realloc(r->text, r->len + ev->len + 1);
        memcpy(r->text + r->len, ev->text, ev->len);
        r->len += ev->len;
        r->text[r->len] = '\0';
    } else if (ev->type == ENGINE_EV_DONE || ev->type == ENGINE_EV_ERROR) {
        r->n_end++;
        r->order = ++c->n_ended;
        if (ev->type == ENGINE_EV_ERROR) {
            r->failed = true;
            r->err_code = ev->err_code;
            snprintf(r->err, sizeof r->err, "%.*s", (int)ev->len, ev->text);
        } else {
            snprintf(r->done_reason, sizeof r->done_reason, "%s", ev->stats->done_reason);
            r->prompt_tokens = ev->stats->prompt_tokens;
            if (ev->n_tokens) {
                r->tokens = malloc((size_t)ev->n_tokens * sizeof *r->tokens);
                memcpy(r->tokens, ev->tokens, (size_t)ev->n_tokens * sizeof *r->tokens);
                r->n_tokens = ev->n_tokens;
            }
        }
    }
}

static void coll_free(struct coll *c)
{
    for (int i = 0; i < 4; i++) {
        free(c->r[i].text);
        free(c->r[i].tokens);
    }
    memset(c, 0, sizeof *c);
}

static struct engine *open_engine(struct coll *c)
{
    struct engine_params p;
    engine_params_default(&p);
    p.model_path = DEMO;
    p.n_threads = 2;
    struct engine *e;
    struct bw_err err;
    assert_int_equal(engine_new(&p, on_event, c, &e, &err), BW_OK);
    return e;
}

/* The runner's loop, bounded: step while there is work, else wait for the wake-up fd. */
static void run_until(struct engine *e, struct coll *c, int n_ended)
{
    for (int i = 0; i < MAX_STEPS && c->n_ended < n_ended; i++) {
        if (engine_has_work(e)) {
            assert_int_equal(engine_step(e), BW_OK);
        } else {
            struct pollfd p = {.fd = engine_wake_fd(e), .events = POLLIN};
            poll(&p, 1, 1000);
        }
    }
    assert_int_equal(c->n_ended, n_ended);
}

static int released;
static void count_release(void *ud)
{
    (void)ud;
    released++;
}

/* ---- pieces == one call ------------------------------------------------------------ */

static void expect_same_tokens(struct engine *e, const char *text)
{
    int32_t *a, *b;
    int na, nb;
    assert_int_equal(engine_tokenize(e, text, true, &a, &na), BW_OK);
    assert_int_equal(engine__tokenize_long(e, text, true, NULL, &b, &nb), BW_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na * sizeof *a);
    free(a);
    free(b);
}

static void test_pieces_rendered_chat(void **state)
{
    (void)state;
    struct coll c = {0};
    struct engine *e = open_engine(&c);
    assert_true(e->tok_chunked); /* the demo's vocabulary (BPE, no EOS added) is cut in pieces */
    /* A rendered chat of 20,000 messages (~600 KB): the model's own template's text. */
    size_t n = 20000;
    struct policy_msg *m = calloc(n, sizeof *m);
    static const char *words[] = {"hi", "  spaced  out ", "line\nbreak\n", "é ü 漢字", "<|im_end|> inside", "\n\n"};
    for (size_t i = 0; i < n; i++)
        m[i] = (struct policy_msg){.role = i % 2 ? "assistant" : "user", .content = words[i % 6]};
    struct engine_request r = {.req_id = 1, .kind = ENGINE_CHAT, .msgs = m, .n_msgs = n, .render_only = true};
    sampling_params_default(&r.sampling);
    struct bw_err err;
    assert_int_equal(engine_submit(e, &r, &err), BW_OK); /* render_only: RENDERED, then DONE */
    assert_int_equal(c.n_ended, 1);
    assert_true(c.r[0].len > 100000); /* cut to Cmax (~32k tokens), still many pieces */
    expect_same_tokens(e, c.r[0].text);
    free(m);
    coll_free(&c);
    engine_free(e);
}

static uint64_t next_rand(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    return *seed;
}

/* The parts random texts are made of: e's first 24 special-token texts and extra ones
 * (fragments of them, white space, words); returns how many (parts holds 64). */
static int text_parts(const struct engine *e, const char *const *extra, size_t n_extra, const char **parts)
{
    int np = 0;
    for (int i = 0; i < e->n_specials && np < 24; i++)
        parts[np++] = e->specials[i].s;
    for (size_t i = 0; i < n_extra && np < 64; i++)
        parts[np++] = extra[i];
    return np;
}

/* Random mixes of e's special-token texts, their fragments, white space and words. */
static void random_mixes(struct engine *e, int rounds, size_t bytes)
{
    static const char *extra[] = {" ", "\n", "  ", "\t", "hello", "world", "é", "<", "|", ">", "<|", "|>", "im_",
                                  "end|>", "<|im_start", "12345", " \n "};
    const char *parts[64];
    int np = text_parts(e, extra, sizeof extra / sizeof *extra, parts);
    uint64_t seed = 42;
    for (int round = 0; round < rounds; round++) {
        size_t cap = bytes, len = 0;
        char *text = malloc(cap + 64);
        while (len < cap) {
            const char *p = parts[(next_rand(&seed) >> 33) % (uint64_t)np];
            size_t k = strlen(p);
            memcpy(text + len, p, k);
            len += k;
        }
        text[len] = '\0';
        expect_same_tokens(e, text);
        free(text);
    }
}

static void test_pieces_random_mixes(void **state)
{
    (void)state;
    struct coll c = {0};
    struct engine *e = open_engine(&c);
    random_mixes(e, 12, 200 * 1024);
    engine_free(e);
}

/* An engine of just a vocabulary's tokenizer fields, from one of the vocabularies llama.cpp
 * ships for its tokenizer tests (vocabulary only). */
static struct engine *open_vocab(const char *name, struct llama_model **model)
{
    char path[512];
    snprintf(path, sizeof path, "%s/models/ggml-vocab-%s.gguf", BELLOWS_LLAMA_DIR, name);
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    *model = llama_model_load_from_file(path, mp);
    assert_non_null(*model);
    struct engine *e = calloc(1, sizeof *e);
    e->vocab = llama_model_get_vocab(*model);
    engine__tok_init(e);
    return e;
}

static void close_vocab(struct engine *e, struct llama_model *model)
{
    engine__tok_free(e);
    free(e);
    llama_model_free(model);
}

static const char *test_vocabs[] = {"llama-spm", "phi-3", "gemma-4", "llama-bpe", "qwen2", "command-r",
                                    "deepseek-llm", "deepseek-coder", "gpt-2", "falcon", "mpt", "baichuan"};

/* The same on the vocabularies llama.cpp ships for its tokenizer tests, SPM ones included:
 * each is cut in pieces or, when it adds EOS or is of another type, tokenized whole -- the
 * same tokens either way. */
static void test_pieces_other_vocabs(void **state)
{
    (void)state;
    int chunked = 0, spm = 0;
    for (size_t i = 0; i < sizeof test_vocabs / sizeof *test_vocabs; i++) {
        struct llama_model *m;
        struct engine *e = open_vocab(test_vocabs[i], &m);
        chunked += e->tok_chunked;
        spm += e->tok_chunked && llama_vocab_type(e->vocab) == LLAMA_VOCAB_TYPE_SPM;
        if (e->tok_chunked)
            random_mixes(e, 3, 160 * 1024);
        close_vocab(e, m);
    }
    assert_true(chunked >= 8);
    assert_true(spm >= 1);
}

/* ---- the next turn: the head's tokens from the memo ----------------------------------- */

/* A chat's growth, as texts: each one the last minus up to 300 bytes of its end, plus new
 * random parts; every text's tokens as in one call, and most of them from a memo. */
static void growing_texts(struct engine *e, int turns, uint64_t seed)
{
    static const char *extra[] = {" ", "\n", "  ", "hello", "world", "é", "<", "|>", "end|>", "12345", " \n "};
    static const char *words[] = {"the quick brown fox ", "jumps over the lazy dog. "};
    const char *parts[64];
    int np = text_parts(e, extra, sizeof extra / sizeof *extra, parts);
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    int reused_turns = 0;
    for (int turn = 0; turn < turns; turn++) {
        next_rand(&seed);
        size_t drop = (seed >> 33) % 300;
        len = len > drop ? len - drop : 0;
        size_t target = len + 9000 + (seed >> 40) % 3000; /* past MEMO_MIN from the first turn */
        while (len < target) {
            /* mostly words (message text), one of the parts every ~8 */
            next_rand(&seed);
            const char *p = (seed >> 60) < 2 ? parts[(seed >> 33) % (uint64_t)np] : words[(seed >> 33) % 2];
            size_t k = strlen(p);
            assert_true(len + k < cap);
            memcpy(text + len, p, k);
            len += k;
        }
        text[len] = '\0';
        int64_t before = e->tok_reused;
        expect_same_tokens(e, text);
        reused_turns += e->tok_reused > before;
    }
    free(text);
    assert_true(reused_turns >= turns / 2);
}

static void test_memo_growing_texts(void **state)
{
    (void)state;
    struct coll c = {0};
    struct engine *e = open_engine(&c);
    growing_texts(e, 40, 7);
    engine_free(e);
}

static void test_memo_other_vocabs(void **state)
{
    (void)state;
    int with_memo = 0;
    for (size_t i = 0; i < sizeof test_vocabs / sizeof *test_vocabs; i++) {
        struct llama_model *m;
        struct engine *e = open_vocab(test_vocabs[i], &m);
        if (e->tok_chunked) {
            growing_texts(e, 12, 1000 + i);
            with_memo++;
        }
        close_vocab(e, m);
    }
    assert_true(with_memo >= 8);
}

/* Two texts of the same 9.5 KB head and different ends, tokenized a, b, a: b must not take
 * a's head from the memo (mark_a, the cut a's end makes, is not one b may use), the second a
 * must -- and every one has the tokens of one call. */
static void expect_mark_refused(struct engine *e, const char *end_a, const char *end_b)
{
    size_t cap = 16384, k = 0;
    char *a = malloc(cap), *b = malloc(cap);
    while (k < 9500)
        k += (size_t)snprintf(a + k, cap - k, "lorem ipsum %zu ", k);
    memcpy(b, a, k);
    snprintf(a + k, cap - k, "%s", end_a);
    snprintf(b + k, cap - k, "%s", end_b);
    expect_same_tokens(e, a);
    int64_t before = e->tok_reused;
    expect_same_tokens(e, b);
    assert_int_equal(e->tok_reused, before);
    expect_same_tokens(e, a);
    assert_true(e->tok_reused > before);
    free(a);
    free(b);
}

/* A mark is used only where its cut is still safe in the new text: phi-3's special tokens
 * strip the white space after them, so a head that ended at "<|end|>" before a letter cannot
 * be reused when "\n" follows it now (the whole text's tokens have no "\n" there). */
static void test_memo_recheck_rstrip(void **state)
{
    (void)state;
    struct llama_model *m;
    struct engine *e = open_vocab("phi-3", &m);
    assert_true(e->tok_chunked);
    bool rstrip = false;
    for (int i = 0; i < e->n_specials; i++)
        rstrip |= e->specials[i].rstrip && !strcmp(e->specials[i].s, "<|end|>");
    assert_true(rstrip);
    expect_mark_refused(e, "<|end|>abc and more words after it", "<|end|>\n and more words after it");
    close_vocab(e, m);
}

/* A head may end only at a mark inside the common prefix: a new text that parts from the
 * last one inside a special token ("<|im_en" + other text) must not get that token. */
static void test_memo_head_inside_a_token(void **state)
{
    (void)state;
    struct coll c = {0};
    struct engine *e = open_engine(&c);
    expect_mark_refused(e, "<|im_end|>user and more words after it", "<|im_en|>user and more words after it");
    engine_free(e);
}

/* The model's own template, turn by turn: each prompt's tokens as in one call, the history's
 * from the memo (all but the last message and the generation prompt). */
static void test_memo_rendered_turns(void **state)
{
    (void)state;
    struct coll c = {0};
    struct engine *e = open_engine(&c);
    enum { TURNS = 24 };
    struct policy_msg m[2 * TURNS + 1];
    char *content[2 * TURNS + 1];
    size_t n = 0;
    m[n++] = (struct policy_msg){.role = "system", .content = "You are a helpful assistant."};
    content[0] = NULL;
    struct bw_err err;
    int reused = 0;
    for (int turn = 0; turn < TURNS; turn++) {
        for (int who = 0; who < 2; who++) {
            char *t = malloc(2048);
            size_t k = 0;
            for (int w = 0; k < 1200; w++)
                k += (size_t)snprintf(t + k, 2048 - k, "%s%d ", who ? "answer" : "word", (turn * 131 + w) % 97);
            content[n] = t;
            m[n] = (struct policy_msg){.role = who ? "assistant" : "user", .content = t};
            n++;
            if (who)
                continue;
            struct engine_request r = {.req_id = 100 + (uint64_t)turn, .kind = ENGINE_CHAT, .msgs = m, .n_msgs = n,
                                       .render_only = true};
            sampling_params_default(&r.sampling);
            c.n_ended = 0;
            assert_int_equal(engine_submit(e, &r, &err), BW_OK);
            assert_int_equal(c.n_ended, 1);
            int64_t before = e->tok_reused;
            expect_same_tokens(e, c.r[0].text);
            reused += e->tok_reused > before;
            coll_free(&c);
            memset(&c, 0, sizeof c);
        }
    }
    for (size_t i = 1; i < n; i++)
        free(content[i]);
    assert_true(reused >= TURNS - 6); /* all turns past the first few (below MEMO_MIN) */
    engine_free(e);
}

/* ---- the preparation thread --------------------------------------------------------- */

static struct engine_request gen_req(uint64_t id, const char *prompt)
{
    struct engine_request r = {.req_id = id, .kind = ENGINE_GENERATE, .prompt = prompt, .num_predict = 8,
                               .want_context = true};
    sampling_params_default(&r.sampling);
    r.sampling.temperature = 0;
    return r;
}

static void test_thread_same_tokens(void **state)
{
    (void)state;
    struct coll c = {0};
    struct engine *e = open_engine(&c);
    struct bw_err err;
    struct engine_request r = gen_req(1, "tell me about the loop");
    assert_int_equal(engine_submit(e, &r, &err), BW_OK); /* on the loop */
    run_until(e, &c, 1);
    struct res sync = c.r[0];
    c.r[0] = (struct res){0};
    c.n_ended = 0;

    engine_prep_config(e, 1, 0); /* everything off the loop */
    released = 0;
    r.req_id = 2;
    assert_int_equal(engine_submit_owned(e, &r, count_release, NULL, &err), BW_OK);
    assert_int_equal(released, 0);        /* the thread holds it */
    assert_true(engine_wake_fd(e) >= 0);
    run_until(e, &c, 1);
    assert_int_equal(released, 1);
    struct res *as = &c.r[0];
    assert_false(as->failed);
    assert_string_equal(as->done_reason, sync.done_reason);
    assert_int_equal(as->n_tokens, sync.n_tokens);
    assert_memory_equal(as->tokens, sync.tokens, (size_t)sync.n_tokens * sizeof *sync.tokens);
    assert_int_equal(as->len, sync.len);
    assert_memory_equal(as->text, sync.text, sync.len);
    free(sync.text);
    free(sync.tokens);
    coll_free(&c);
    engine_free(e);
}

static struct policy_msg *huge_chat(size_t n)
{
    struct policy_msg *m = calloc(n, sizeof *m);
    for (size_t i = 0; i < n; i++)
        m[i] = (struct policy_msg){.role = i % 2 ? "assistant" : "user", .content = "hi"};
    return m;
}

static void test_small_passes_huge(void **state)
{
    (void)state;
    struct coll c = {0};
    struct engine *e = open_engine(&c);
    struct bw_err err;
    size_t n = 100001;
    struct policy_msg *m = huge_chat(n);
    struct engine_request big = {.req_id = 1, .kind = ENGINE_CHAT, .msgs = m, .n_msgs = n, .num_predict = 2};
    sampling_params_default(&big.sampling);
    released = 0;
    assert_int_equal(engine_submit_owned(e, &big, count_release, NULL, &err), BW_OK);
    assert_int_equal(released, 0); /* went off the loop: 100,000 messages are past the threshold */
    struct engine_request small = gen_req(2, "hi");
    assert_int_equal(engine_submit_owned(e, &small, count_release, NULL, &err), BW_OK);
    assert_int_equal(released, 1); /* prepared on the loop at once */
    struct engine_status st;
    engine_status(e, &st);
    assert_int_equal(st.queued, 2); /* the small one queued, the big one preparing */
    run_until(e, &c, 2);
    struct res *rb = res_for(&c, 1), *rs = res_for(&c, 2);
    assert_int_equal(rs->order, 1);
    assert_int_equal(rb->order, 2);
    assert_false(rb->failed);
    assert_int_equal(rb->n_end, 1);
    assert_int_equal(released, 2);
    free(m);
    coll_free(&c);
    engine_free(e);
}

static void test_cancel_and_timeout(void **state)
{
    (void)state;
    struct coll c = {0};
    struct engine *e = open_engine(&c);
    struct bw_err err;
    size_t n = 100001;
    struct policy_msg *m = huge_chat(n);
    struct engine_request big = {.req_id = 1, .kind = ENGINE_CHAT, .msgs = m, .n_msgs = n, .num_predict = 2};
    sampling_params_default(&big.sampling);
    released = 0;
    assert_int_equal(engine_submit_owned(e, &big, count_release, NULL, &err), BW_OK);
    assert_int_equal(engine_submit_owned(e, &big, count_release, NULL, &err), BW_EBUSY); /* its id is taken */
    assert_int_equal(released, 1);
    assert_int_equal(engine_cancel(e, 1), BW_OK);
    run_until(e, &c, 1);
    assert_int_equal(released, 2);
    assert_false(c.r[0].failed);
    assert_string_equal(c.r[0].done_reason, "cancel");
    coll_free(&c);

    engine_prep_config(e, 0, 1); /* 1 ms: any huge chat runs past it */
    big.req_id = 2;
    assert_int_equal(engine_submit_owned(e, &big, count_release, NULL, &err), BW_OK);
    run_until(e, &c, 1);
    assert_true(c.r[0].failed);
    assert_int_equal(c.r[0].err_code, BW_ETOOLONG);
    assert_non_null(strstr(c.r[0].err, "preparing the prompt took longer than"));
    assert_int_equal(released, 3);

    /* engine_free with a preparation in flight: stopped, released, no event. */
    engine_prep_config(e, 0, 0);
    big.req_id = 3;
    assert_int_equal(engine_submit_owned(e, &big, count_release, NULL, &err), BW_OK);
    engine_free(e);
    assert_int_equal(released, 4);
    free(m);
    coll_free(&c);
}

int main(int argc, char **argv)
{
    log_set_level(LOG_WARN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]); /* one test, e.g. under valgrind --tool=helgrind */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces_rendered_chat),
        cmocka_unit_test(test_pieces_random_mixes),
        cmocka_unit_test(test_pieces_other_vocabs),
        cmocka_unit_test(test_memo_growing_texts),
        cmocka_unit_test(test_memo_other_vocabs),
        cmocka_unit_test(test_memo_rendered_turns),
        cmocka_unit_test(test_memo_recheck_rstrip),
        cmocka_unit_test(test_memo_head_inside_a_token),
        cmocka_unit_test(test_thread_same_tokens),
        cmocka_unit_test(test_small_passes_huge),
        cmocka_unit_test(test_cancel_and_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
