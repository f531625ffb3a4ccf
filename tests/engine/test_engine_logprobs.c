/* test_engine_logprobs.c -- each generated token's log-probability (engine_request.logprobs),
 * end to end in the engine on the demo model: one entry per answer token, in order, before
 * the text it belongs to, whose bytes are that text; the model's own distribution (the same
 * whatever the sampler does with it); the alternatives sorted, the greedy choice the first
 * of them; the text a stop string cut has no entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>

#include "engine/chat.h"
#include "engine/engine.h"
#include "util/log.h"

#define DEMO BELLOWS_TEST_MODELS "/demo.gguf"
#define MAX_STEPS 100000

struct result {
    char text[8192];
    size_t len;
    json_t *entries;   /* every entry, in order */
    char bytes[8192];  /* the entries' bytes, concatenated */
    size_t n_bytes;
    bool text_before_entries; /* some text came before the entry of its token */
    bool done, failed;
    struct engine_stats st;
};

static void on_event(void *ud, const struct engine_event *ev)
{
    struct result *r = ud;
    assert_false(r->done);
    switch (ev->type) {
    case ENGINE_EV_TEXT:
        assert_true(r->len + ev->len < sizeof r->text);
        memcpy(r->text + r->len, ev->text, ev->len);
        r->len += ev->len;
        if (r->len > r->n_bytes)
            r->text_before_entries = true;
        break;
    case ENGINE_EV_LOGPROBS: {
        json_error_t jerr;
        json_t *a = json_loadb(ev->text, ev->len, 0, &jerr);
        if (!json_is_array(a) || !json_array_size(a))
            fail_msg("LOGPROBS event is not a non-empty JSON array: %s", jerr.text);
        size_t i;
        json_t *e;
        json_array_foreach(a, i, e) {
            json_t *b;
            size_t k;
            json_array_foreach(json_object_get(e, "bytes"), k, b) {
                assert_true(r->n_bytes < sizeof r->bytes);
                r->bytes[r->n_bytes++] = (char)json_integer_value(b);
            }
        }
        json_array_extend(r->entries, a);
        json_decref(a);
        break;
    }
    case ENGINE_EV_DONE:
        r->st = *ev->stats;
        r->done = true;
        break;
    case ENGINE_EV_ERROR:
        r->failed = r->done = true;
        break;
    default:
        break;
    }
}

static struct engine *open_engine(struct result *res)
{
    struct engine_params p;
    engine_params_default(&p);
    p.model_path = DEMO;
    p.n_parallel = 1;
    p.n_threads = 2;
    struct engine *e = NULL;
    struct bw_err err;
    if (engine_new(&p, on_event, res, &e, &err))
        fail_msg("engine_new: %s", err.msg);
    return e;
}

/* One chat turn; temperature < 0: greedy. */
static void run(struct engine *e, struct result *res, uint64_t id, int top, float temperature, int seed,
                const char *stop)
{
    static const struct policy_msg m[] = {{.role = "user", .content = "Tell me about the river and the town."}};
    struct engine_request r = {.req_id = id, .kind = ENGINE_CHAT, .msgs = m, .n_msgs = 1, .num_predict = 200,
                               .num_keep = -1, .logprobs = true, .top_logprobs = top};
    sampling_params_default(&r.sampling);
    if (temperature < 0) {
        r.sampling.temperature = 0;
    } else {
        r.sampling.temperature = temperature;
        r.sampling.seed = seed;
    }
    const char *stops[] = {stop};
    if (stop) {
        r.stop = stops;
        r.n_stop = 1;
    }
    json_decref(res->entries);
    memset(res, 0, sizeof *res);
    res->entries = json_array();
    struct bw_err err;
    if (engine_submit(e, &r, &err))
        fail_msg("engine_submit: %s", err.msg);
    for (int i = 0; i < MAX_STEPS && engine_has_work(e); i++)
        assert_int_equal(engine_step(e), BW_OK);
    assert_true(res->done && !res->failed);
    assert_false(res->text_before_entries);
}

static double logprob_of(const json_t *e) { return json_number_value(json_object_get(e, "logprob")); }

/* One entry per sampled token, the end-of-generation token excepted; their bytes are the
 * answer. */
static void check_count_and_bytes(const struct result *res)
{
    int want = res->st.eval_count - (strcmp(res->st.done_reason, "length") ? 1 : 0);
    assert_int_equal(json_array_size(res->entries), want);
    assert_int_equal(res->n_bytes, res->len);
    assert_memory_equal(res->bytes, res->text, res->len);
}

/* Every entry: a probability, its alternatives (n of them) most likely first, the token
 * among them with the same value when it is one of them. */
static void check_entries(const struct result *res, int top)
{
    size_t i;
    json_t *e;
    json_array_foreach(res->entries, i, e) {
        double lp = logprob_of(e);
        assert_true(lp <= 0.0 && lp > -10000.0);
        assert_true(json_is_string(json_object_get(e, "token")));
        json_t *alts = json_object_get(e, "top_logprobs");
        if (!top) {
            assert_null(alts);
            continue;
        }
        assert_int_equal(json_array_size(alts), top);
        double sum = 0;
        for (size_t k = 0; k < json_array_size(alts); k++) {
            const json_t *a = json_array_get(alts, k);
            sum += exp(logprob_of(a));
            if (k)
                assert_true(logprob_of(a) <= logprob_of(json_array_get(alts, k - 1)));
            if (json_equal(json_object_get(a, "bytes"), json_object_get(e, "bytes")))
                assert_true(fabs(logprob_of(a) - lp) < 1e-6);
        }
        assert_true(sum <= 1.0 + 1e-5);
    }
}

static void greedy_entries_follow_the_text(void **state)
{
    (void)state;
    struct result res = {0};
    struct engine *e = open_engine(&res);
    run(e, &res, 1, 5, -1, 0, NULL);
    print_message("%d tokens, %s: %.*s\n", res.st.eval_count, res.st.done_reason, (int)res.len, res.text);
    assert_true(res.st.eval_count > 5);
    check_count_and_bytes(&res);
    check_entries(&res, 5);
    /* greedy: the chosen token is the most likely one */
    size_t i;
    json_t *en;
    json_array_foreach(res.entries, i, en) {
        const json_t *best = json_array_get(json_object_get(en, "top_logprobs"), 0);
        assert_true(json_equal(json_object_get(best, "bytes"), json_object_get(en, "bytes")));
        assert_true(fabs(logprob_of(best) - logprob_of(en)) < 1e-6);
    }
    json_t *greedy = json_incref(res.entries);

    /* without alternatives: the same tokens and values, no top_logprobs */
    run(e, &res, 2, 0, -1, 0, NULL);
    check_count_and_bytes(&res);
    check_entries(&res, 0);
    assert_int_equal(json_array_size(res.entries), json_array_size(greedy));
    json_array_foreach(res.entries, i, en) {
        const json_t *g = json_array_get(greedy, i);
        assert_string_equal(json_string_value(json_object_get(en, "token")), json_string_value(json_object_get(g, "token")));
        assert_true(logprob_of(en) == logprob_of(g));
    }

    /* sampled hot: the values are the model's distribution, not the sampler's -- the first
     * token (the same prompt) has the same alternatives as under greedy decoding */
    bool ended = false; /* a run that ends with the end-of-generation token, not the limit */
    for (int seed = 1; seed <= 10 && !ended; seed++) {
        run(e, &res, 2 + (uint64_t)seed, 5, 1.5f, seed, NULL);
        print_message("sampled, seed %d: %d tokens, %s\n", seed, res.st.eval_count, res.st.done_reason);
        check_count_and_bytes(&res);
        check_entries(&res, 5);
        assert_true(json_equal(json_object_get(json_array_get(res.entries, 0), "top_logprobs"),
                               json_object_get(json_array_get(greedy, 0), "top_logprobs")));
        ended = !strcmp(res.st.done_reason, "stop");
    }
    assert_true(ended);
    json_decref(greedy);
    json_decref(res.entries);
    engine_free(e);
}

/* A stop string: the tokens wholly inside the cut text get no entry; the client's text is
 * a prefix of the entries' bytes, which end within the stop. */
static void run_with_stop(struct engine *e, struct result *res, const char *full, size_t full_entries,
                          const char *stop)
{
    size_t cut_at = (size_t)(strstr(full, stop) - full);
    run(e, res, 2, 0, -1, 0, stop);
    print_message("stop [%s]: %zu of %zu entries, text %zu bytes, entries %zu bytes\n", stop,
                  json_array_size(res->entries), full_entries, res->len, res->n_bytes);
    assert_int_equal(res->len, cut_at);
    assert_true(res->n_bytes >= res->len && res->n_bytes < res->len + strlen(stop));
    assert_memory_equal(res->bytes, res->text, res->len);
    assert_true(json_array_size(res->entries) < full_entries);
}

static void text_cut_by_a_stop_has_no_entries(void **state)
{
    (void)state;
    struct result res = {0};
    struct engine *e = open_engine(&res);
    run(e, &res, 1, 0, -1, 0, NULL);
    size_t full_entries = json_array_size(res.entries);
    char *full = strndup(res.text, res.len);
    assert_non_null(full);
    /* a word from a third of the way in: the stop starts where a token does */
    const char *sp = strchr(full + res.len / 3, ' ');
    assert_non_null(sp);
    size_t wl = strcspn(sp + 1, " ");
    char stop[32] = "";
    assert_true(wl > 0 && wl < sizeof stop - 1);
    memcpy(stop, sp, wl + 1); /* " word" */
    run_with_stop(e, &res, full, full_entries, stop);
    assert_int_equal(res.n_bytes, res.len);
    /* the end of a word of 4 letters or more and the space after it: the stop starts inside
     * the word's token, whose entry comes (part of its text went out) */
    const char *w = full + res.len / 3;
    for (; *w; w++) {
        size_t n = strcspn(w + 1, " ");
        if (*w == ' ' && n >= 4 && w[1 + n] == ' ') {
            snprintf(stop, sizeof stop, "%.2s ", w + n - 1);
            break;
        }
    }
    assert_true(*w);
    run_with_stop(e, &res, full, full_entries, stop);
    assert_true(res.n_bytes > res.len);
    free(full);
    json_decref(res.entries);
    engine_free(e);
}

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greedy_entries_follow_the_text),
        cmocka_unit_test(text_cut_by_a_stop_has_no_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
