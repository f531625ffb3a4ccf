/* test_proto.c -- unit tests for src/proto/proto.c: messages survive encode -> frame ->
 * decode (docs/runner-protocol.md). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/limits.h"
#include "proto/options.h"
#include "proto/proto.h"
#include "store/names.h"

/* Encodes, checks the frame header, returns the payload (points into *frame). */
static const uint8_t *payload_of(uint8_t *frame, size_t frame_len, uint32_t *len)
{
    const uint8_t *p;
    size_t consumed;
    assert_int_equal(proto_frame_next(frame, frame_len, &p, len, &consumed), 1);
    assert_int_equal(consumed, frame_len);
    return p;
}

/* The think switch travels with chat and generate requests; absent stays NULL. */
static void request_carries_think(void **state)
{
    (void)state;
    static const char *const values[] = {"true", "false", "low", "medium", "high", NULL};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        struct proto_request r = {.type = PROTO_REQ_GENERATE, .id = 7};
        r.req.kind = ENGINE_GENERATE;
        r.req.prompt = "hi";
        r.req.think = values[i];
        sampling_params_default(&r.req.sampling);
        uint8_t *frame;
        size_t frame_len;
        assert_int_equal(proto_request_encode(&r, &frame, &frame_len), BW_OK);
        uint32_t len;
        const uint8_t *p = payload_of(frame, frame_len, &len);
        struct proto_request d;
        struct bw_err err;
        assert_int_equal(proto_request_decode(p, len, &d, &err), BW_OK);
        if (values[i])
            assert_string_equal(d.req.think, values[i]);
        else
            assert_null(d.req.think);
        assert_string_equal(d.req.prompt, "hi");
        proto_request_free(&d);
        free(frame);
    }
}

/* A token event says whether its text is reasoning; the flag is written only when true. */
static void token_event_carries_thinking(void **state)
{
    (void)state;
    for (int thinking = 0; thinking < 2; thinking++) {
        struct proto_event ev = {.type = PROTO_EV_TOKEN, .id = 3, .text = "abc", .len = 3, .thinking = thinking};
        uint8_t *frame;
        size_t frame_len;
        assert_int_equal(proto_event_encode(&ev, &frame, &frame_len), BW_OK);
        uint32_t len;
        const uint8_t *p = payload_of(frame, frame_len, &len);
        assert_int_equal(memmem(p, len, "\"thinking\"", 10) != NULL, thinking);
        struct proto_event d;
        struct bw_err err;
        assert_int_equal(proto_event_decode(p, len, &d, &err), BW_OK);
        assert_int_equal(d.type, PROTO_EV_TOKEN);
        assert_int_equal(d.len, 3);
        assert_memory_equal(d.text, "abc", 3);
        assert_int_equal(d.thinking, thinking);
        proto_event_free(&d);
        free(frame);
    }
}

/* Encodes r and decodes it again into *d (free with proto_request_free). */
static void roundtrip(const struct proto_request *r, struct proto_request *d)
{
    uint8_t *frame;
    size_t frame_len;
    assert_int_equal(proto_request_encode(r, &frame, &frame_len), BW_OK);
    uint32_t len;
    const uint8_t *p = payload_of(frame, frame_len, &len);
    struct bw_err err;
    assert_int_equal(proto_request_decode(p, len, d, &err), BW_OK);
    free(frame);
}

/* generate's context (Ollama's token array) travels as token ids, unchanged, and the
 * request asks for the context back; without one, neither field is there. */
static void generate_carries_context(void **state)
{
    (void)state;
    static const int32_t ctx[] = {151644, 8948, 0, 42};
    struct proto_request r = {.type = PROTO_REQ_GENERATE, .id = 9};
    r.req.kind = ENGINE_GENERATE;
    r.req.prompt = "next";
    r.req.context = ctx;
    r.req.n_context = 4;
    r.req.want_context = true;
    sampling_params_default(&r.req.sampling);
    struct proto_request d;
    roundtrip(&r, &d);
    assert_int_equal(d.req.n_context, 4);
    assert_memory_equal(d.req.context, ctx, sizeof ctx);
    assert_true(d.req.want_context);
    proto_request_free(&d);

    r.req.context = NULL;
    r.req.n_context = 0;
    r.req.want_context = false;
    roundtrip(&r, &d);
    assert_int_equal(d.req.n_context, 0);
    assert_null(d.req.context);
    assert_false(d.req.want_context);
    proto_request_free(&d);
}

/* An embedding input given as token ids travels as ids (no text). */
static void embed_carries_input_tokens(void **state)
{
    (void)state;
    static const int32_t ids[] = {9707, 1879};
    struct proto_request r = {.type = PROTO_REQ_EMBED, .id = 5};
    r.req.kind = ENGINE_EMBED;
    r.req.input_tokens = ids;
    r.req.n_input_tokens = 2;
    r.req.truncate = false;
    struct proto_request d;
    roundtrip(&r, &d);
    assert_int_equal(d.req.n_input_tokens, 2);
    assert_memory_equal(d.req.input_tokens, ids, sizeof ids);
    assert_string_equal(d.req.prompt, "");
    assert_false(d.req.truncate);
    proto_request_free(&d);
}

/* Token ids that are not integers are refused with the field's name. */
static void bad_token_arrays_are_refused(void **state)
{
    (void)state;
    static const char *const msgs[] = {
        "{\"type\":\"generate\",\"id\":1,\"prompt\":\"x\",\"context\":[1,\"a\"]}",
        "{\"type\":\"generate\",\"id\":1,\"prompt\":\"x\",\"context\":7}",
        "{\"type\":\"embed\",\"id\":1,\"tokens\":[1.5]}",
    };
    static const char *const field[] = {"'context'", "'context'", "'tokens'"};
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        struct proto_request d;
        struct bw_err err;
        assert_int_equal(proto_request_decode((const uint8_t *)msgs[i], strlen(msgs[i]), &d, &err), BW_EINVAL);
        assert_non_null(strstr(err.msg, field[i]));
        assert_int_equal(d.id, 1);
        proto_request_free(&d);
    }
}

/* done carries the context when the runner gives one, and only then. */
static void done_event_carries_context(void **state)
{
    (void)state;
    static const int32_t ctx[] = {1, 2, 3, 151645};
    for (int with = 0; with < 2; with++) {
        struct proto_event ev = {.type = PROTO_EV_DONE, .id = 4, .tokens = with ? ctx : NULL, .n_tokens = with ? 4 : 0};
        ev.stats.eval_count = 1;
        uint8_t *frame;
        size_t frame_len;
        assert_int_equal(proto_event_encode(&ev, &frame, &frame_len), BW_OK);
        uint32_t len;
        const uint8_t *p = payload_of(frame, frame_len, &len);
        struct proto_event d;
        struct bw_err err;
        assert_int_equal(proto_event_decode(p, len, &d, &err), BW_OK);
        assert_int_equal(d.type, PROTO_EV_DONE);
        assert_int_equal(d.stats.eval_count, 1);
        assert_int_equal(d.n_tokens, with ? 4 : 0);
        if (with)
            assert_memory_equal(d.tokens, ctx, sizeof ctx);
        else
            assert_null(memmem(p, len, "\"context\":", 10));
        proto_event_free(&d);
        free(frame);
    }
}

/* Tools travel with their tool_choice (and the function it names); a tool call event
 * carries its JSON object and its index, and DONE says how many calls were made. */
static void tools_and_tool_calls_travel(void **state)
{
    (void)state;
    struct proto_request r = {.type = PROTO_REQ_CHAT, .id = 9}, d;
    struct policy_msg m = {.role = "user", .content = "hi"};
    r.req.kind = ENGINE_CHAT;
    r.req.msgs = &m;
    r.req.n_msgs = 1;
    r.req.tools_json = "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]";
    r.req.tool_choice = "function";
    r.req.tool_name = "f";
    r.req.single_call = true; /* parallel_tool_calls false */
    sampling_params_default(&r.req.sampling);
    roundtrip(&r, &d);
    assert_string_equal(d.req.tools_json, r.req.tools_json);
    assert_string_equal(d.req.tool_choice, "function");
    assert_string_equal(d.req.tool_name, "f");
    assert_true(d.req.single_call);
    proto_request_free(&d);
    r.req.tool_choice = r.req.tool_name = NULL;
    r.req.single_call = false;
    roundtrip(&r, &d);
    assert_null(d.req.tool_choice);
    assert_null(d.req.tool_name);
    assert_false(d.req.single_call);
    proto_request_free(&d);

    const char *call = "{\"name\":\"f\",\"arguments\":{\"a\":1}}";
    struct proto_event ev = {.type = PROTO_EV_TOOL_CALL, .id = 9, .text = call, .len = strlen(call), .call_index = 2};
    uint8_t *frame;
    size_t frame_len;
    assert_int_equal(proto_event_encode(&ev, &frame, &frame_len), BW_OK);
    uint32_t len;
    const uint8_t *p = payload_of(frame, frame_len, &len);
    assert_non_null(memmem(p, len, "\"type\":\"tool_call\"", 18));
    struct proto_event e;
    struct bw_err err;
    assert_int_equal(proto_event_decode(p, len, &e, &err), BW_OK);
    assert_int_equal(e.type, PROTO_EV_TOOL_CALL);
    assert_int_equal(e.call_index, 2);
    assert_int_equal(e.len, strlen(call));
    assert_memory_equal(e.text, call, e.len);
    assert_string_equal(proto_ev_type_name(e.type), "tool_call");
    proto_event_free(&e);
    free(frame);

    struct proto_event done = {.type = PROTO_EV_DONE, .id = 9};
    done.stats.tool_calls = 3;
    assert_int_equal(proto_event_encode(&done, &frame, &frame_len), BW_OK);
    p = payload_of(frame, frame_len, &len);
    assert_int_equal(proto_event_decode(p, len, &e, &err), BW_OK);
    assert_int_equal(e.stats.tool_calls, 3);
    proto_event_free(&e);
    free(frame);
}

/* logprobs and top_logprobs travel with a generation; a LOGPROBS event carries its entries
 * as text; a top_logprobs the engine cannot give is refused at decode. */
static void logprobs_travel(void **state)
{
    (void)state;
    struct proto_request r = {.type = PROTO_REQ_GENERATE, .id = 4}, d;
    r.req.kind = ENGINE_GENERATE;
    r.req.prompt = "hi";
    sampling_params_default(&r.req.sampling);
    roundtrip(&r, &d);
    assert_false(d.req.logprobs);
    assert_int_equal(d.req.top_logprobs, 0);
    proto_request_free(&d);
    r.req.logprobs = true;
    r.req.top_logprobs = 20;
    roundtrip(&r, &d);
    assert_true(d.req.logprobs);
    assert_int_equal(d.req.top_logprobs, 20);
    proto_request_free(&d);

    uint8_t *frame;
    size_t frame_len;
    uint32_t len;
    struct bw_err err;
    r.req.top_logprobs = 21;
    assert_int_equal(proto_request_encode(&r, &frame, &frame_len), BW_OK);
    const uint8_t *p = payload_of(frame, frame_len, &len);
    assert_int_equal(proto_request_decode(p, len, &d, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "top_logprobs"));
    proto_request_free(&d);
    free(frame);

    const char *entries = "[{\"token\":\"a\",\"logprob\":-0.5,\"bytes\":[97]}]";
    struct proto_event ev = {.type = PROTO_EV_LOGPROBS, .id = 4, .text = entries, .len = strlen(entries)};
    assert_int_equal(proto_event_encode(&ev, &frame, &frame_len), BW_OK);
    p = payload_of(frame, frame_len, &len);
    struct proto_event e;
    assert_int_equal(proto_event_decode(p, len, &e, &err), BW_OK);
    assert_int_equal(e.type, PROTO_EV_LOGPROBS);
    assert_string_equal(proto_ev_type_name(e.type), "logprobs");
    assert_int_equal(e.len, strlen(entries));
    assert_memory_equal(e.text, entries, e.len);
    proto_event_free(&e);
    free(frame);
}

/* ---- framing (design.md §8: protocol framing) ---- */

static void frames_split_at_every_byte_and_refuse_bad_lengths(void **state)
{
    (void)state;
    const char *payload = "{\"type\":\"cancel\",\"id\":7}";
    uint8_t buf[64];
    uint32_t n = (uint32_t)strlen(payload);
    proto_frame_header(n, buf);
    assert_int_equal(buf[0], 0);
    assert_int_equal(buf[3], n); /* big-endian */
    memcpy(buf + 4, payload, n);
    memcpy(buf + 4 + n, buf, 4 + n); /* two frames back to back */
    const uint8_t *p;
    uint32_t plen;
    size_t used;
    for (size_t cut = 0; cut < 4 + n; cut++) /* a partial frame: "need more", nothing consumed */
        assert_int_equal(proto_frame_next(buf, cut, &p, &plen, &used), 0);
    assert_int_equal(proto_frame_next(buf, 2 * (4 + n), &p, &plen, &used), 1);
    assert_int_equal(plen, n);
    assert_int_equal(used, 4 + n);
    assert_memory_equal(p, payload, n);
    assert_int_equal(proto_frame_next(buf + used, 4 + n, &p, &plen, &used), 1);
    uint8_t bad[8] = {0, 0, 0, 0};
    assert_true(proto_frame_next(bad, 4, &p, &plen, &used) < 0); /* length 0 */
    proto_frame_header(PROTO_MAX_FRAME + 1, bad);
    assert_true(proto_frame_next(bad, 8, &p, &plen, &used) < 0); /* over the limit: before reading it */
}

/* ---- options mapping (options.h) and limits (limits.h) ---- */

static int apply(const char *json, struct engine_request *r, const char **stops, struct bw_err *err)
{
    json_t *o = json_loads(json, 0, NULL);
    assert_non_null(o);
    memset(r, 0, sizeof *r);
    sampling_params_default(&r->sampling);
    int rc = options_apply(o, r, stops, err);
    json_decref(o);
    return rc;
}

static void options_map_types_and_refuse_what_does_not_fit_an_int(void **state)
{
    (void)state;
    struct engine_request r;
    const char *stops[OPTIONS_MAX_STOP];
    struct bw_err err;
    json_t *o = json_loads("{\"temperature\":0.5,\"top_k\":7,\"repeat_last_n\":40.0,\"num_predict\":-2,"
                           "\"seed\":123456789012,\"num_ctx\":99,\"unknown\":\"x\",\"top_p\":null,\"stop\":\"END\"}",
                           0, NULL);
    memset(&r, 0, sizeof r);
    sampling_params_default(&r.sampling);
    float top_p = r.sampling.top_p;
    assert_int_equal(options_apply(o, &r, stops, &err), BW_OK);
    assert_true(r.sampling.temperature == 0.5f);
    assert_int_equal(r.sampling.top_k, 7);
    assert_int_equal(r.sampling.repeat_last_n, 40); /* 40.0 is an integer to JavaScript */
    assert_int_equal(r.num_predict, -2);
    assert_true(r.sampling.seed == 123456789012LL);
    assert_true(r.sampling.top_p == top_p); /* null: the default */
    assert_int_equal(r.n_stop, 1);
    assert_string_equal(r.stop[0], "END");
    /* and back: every key, defaults included */
    json_t *back = options_to_json(&r);
    assert_int_equal(json_integer_value(json_object_get(back, "top_k")), 7);
    assert_int_equal(json_array_size(json_object_get(back, "stop")), 1);
    json_decref(back);
    json_decref(o);

    assert_int_equal(apply("{\"top_k\":1.5}", &r, stops, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "'top_k' must be an integer"));
    assert_int_equal(apply("{\"temperature\":\"hot\"}", &r, stops, &err), BW_EINVAL);
    assert_int_equal(apply("{\"num_ctx\":\"big\"}", &r, stops, &err), BW_EINVAL);
    assert_int_equal(apply("{\"stop\":[\"a\",\"\"]}", &r, stops, &err), BW_EINVAL);
    assert_int_equal(apply("{\"stop\":5}", &r, stops, &err), BW_EINVAL);
    /* 2^31 does not fit an int: refused, never wrapped to a negative */
    assert_int_equal(apply("{\"repeat_last_n\":2147483648}", &r, stops, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "options.repeat_last_n must be between"));
    assert_int_equal(apply("[1]", &r, stops, &err), BW_EINVAL);
}

static int check(const char *json, int cmax, struct bw_err *err)
{
    struct limits l;
    limits_defaults(&l);
    json_t *o = json_loads(json, 0, NULL);
    assert_non_null(o);
    int rc = limits_check_options(&l, o, cmax, err);
    json_decref(o);
    return rc;
}

static void option_ranges_name_the_field_and_the_limit(void **state)
{
    (void)state;
    struct bw_err err;
    assert_int_equal(check("{\"repeat_last_n\":2147483647}", 32768, &err), BW_EINVAL);
    assert_string_equal(err.msg, "options.repeat_last_n must be between -1 and 32768 (the model's context)");
    assert_int_equal(check("{\"repeat_last_n\":32768,\"num_keep\":-1}", 32768, &err), BW_OK);
    assert_int_equal(check("{\"repeat_last_n\":-1}", 4096, &err), BW_OK);
    assert_int_equal(check("{\"repeat_last_n\":4097}", 4096, &err), BW_EINVAL);
    assert_int_equal(check("{\"num_keep\":5000}", 4096, &err), BW_EINVAL);
    assert_int_equal(check("{\"repeat_last_n\":20000000}", 0, &err), BW_EINVAL); /* unknown context: 2^24 */
    assert_int_equal(check("{\"num_predict\":-3}", 4096, &err), BW_EINVAL);
    assert_string_equal(err.msg, "options.num_predict must be between -2 and 2147483647");
    assert_int_equal(check("{\"num_predict\":1e12}", 4096, &err), BW_EINVAL);
    assert_int_equal(check("{\"top_k\":2000000}", 4096, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "(0 or -1: off)"));
    assert_int_equal(check("{\"temperature\":1e39}", 4096, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "options.temperature must be a finite number"));
    assert_int_equal(check("{\"temperature\":-0.5,\"seed\":-1,\"seed2\":1e300}", 4096, &err), BW_OK);
    assert_int_equal(check("{\"top_k\":\"x\"}", 4096, &err), BW_OK); /* the type is options_apply's to name */
    /* stop strings: count and bytes */
    char big[1200 + 32];
    snprintf(big, sizeof big, "{\"stop\":[\"%01025d\"]}", 0);
    assert_int_equal(check(big, 4096, &err), BW_EINVAL);
    assert_string_equal(err.msg, "options.stop[0] is 1025 bytes, at most 1024");
    assert_int_equal(check("{\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\","
                           "\"13\",\"14\",\"15\",\"16\",\"17\"]}", 4096, &err), BW_EINVAL);
    assert_string_equal(err.msg, "options.stop: 17 strings, at most 16");
}

static const char *fake_env(const char *name)
{
    if (!strcmp(name, "BELLOWS_MAX_MESSAGES"))
        return "3";
    if (!strcmp(name, "BELLOWS_MAX_TOOLS"))
        return "";
    return NULL;
}
static const char *bad_env(const char *name) { return strcmp(name, "BELLOWS_MAX_INPUTS") ? NULL : "0"; }

static void counts_are_configurable_and_checked_on_the_body(void **state)
{
    (void)state;
    struct limits l;
    struct bw_err err;
    limits_defaults(&l);
    assert_int_equal(l.max[LIMITS_MESSAGES], 10000);
    assert_int_equal(limits_from_env(&l, fake_env, &err), BW_OK);
    assert_int_equal(l.max[LIMITS_MESSAGES], 3);
    assert_int_equal(l.max[LIMITS_TOOLS], limits_counts[LIMITS_TOOLS].def); /* empty: the default */
    struct limits before = l;
    assert_int_equal(limits_from_env(&l, bad_env, &err), BW_EINVAL);
    assert_string_equal(err.msg, "BELLOWS_MAX_INPUTS=0: expected an integer from 1 to 1000000");
    assert_memory_equal(&l, &before, sizeof l); /* untouched on error */

    json_t *b = json_loads("{\"messages\":[{},{},{},{}]}", 0, NULL);
    assert_int_equal(limits_check_body(&l, b, &err), BW_EINVAL);
    assert_string_equal(err.msg, "messages: 4 messages, at most 3 (BELLOWS_MAX_MESSAGES raises the limit)");
    json_decref(b);
    b = json_loads("{\"messages\":[{},{},{}],\"input\":[1,2,3,4,5]}", 0, NULL); /* token ids: one input */
    l.max[LIMITS_INPUTS] = 2;
    assert_int_equal(limits_check_body(&l, b, &err), BW_OK);
    json_decref(b);
    b = json_loads("{\"prompt\":[\"a\",\"b\",\"c\"]}", 0, NULL);
    assert_int_equal(limits_check_body(&l, b, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "prompt: 3 inputs, at most 2"));
    json_decref(b);
    assert_int_equal(limits_check_count(&l, LIMITS_MODEL_NAME, NAMES_FULL_MAX, &err), BW_OK);
    assert_int_equal(limits_check_count(&l, LIMITS_MODEL_NAME, NAMES_FULL_MAX + 1, &err), BW_EINVAL);
}

static void keep_alive_past_a_century_is_forever(void **state)
{
    (void)state;
    assert_true(limits_keep_alive(-5) == -1);
    assert_true(limits_keep_alive(0) == 0);
    assert_true(limits_keep_alive(300000000000LL) == 300000000000LL);
    assert_true(limits_keep_alive(2562047LL * 3600 * 1000000000LL) == -1); /* "2562047h" */
    assert_true(limits_keep_alive(LIMITS_KEEP_ALIVE_FOREVER_NS) == LIMITS_KEEP_ALIVE_FOREVER_NS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_carries_think),
        cmocka_unit_test(token_event_carries_thinking),
        cmocka_unit_test(generate_carries_context),
        cmocka_unit_test(embed_carries_input_tokens),
        cmocka_unit_test(bad_token_arrays_are_refused),
        cmocka_unit_test(done_event_carries_context),
        cmocka_unit_test(tools_and_tool_calls_travel),
        cmocka_unit_test(logprobs_travel),
        cmocka_unit_test(frames_split_at_every_byte_and_refuse_bad_lengths),
        cmocka_unit_test(options_map_types_and_refuse_what_does_not_fit_an_int),
        cmocka_unit_test(option_ranges_name_the_field_and_the_limit),
        cmocka_unit_test(counts_are_configurable_and_checked_on_the_body),
        cmocka_unit_test(keep_alive_past_a_century_is_forever),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
