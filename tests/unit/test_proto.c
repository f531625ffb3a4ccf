/* test_proto.c -- unit tests for src/proto/proto.c: messages survive encode -> frame ->
 * decode (docs/runner-protocol.md). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/proto.h"

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
    sampling_params_default(&r.req.sampling);
    roundtrip(&r, &d);
    assert_string_equal(d.req.tools_json, r.req.tools_json);
    assert_string_equal(d.req.tool_choice, "function");
    assert_string_equal(d.req.tool_name, "f");
    proto_request_free(&d);
    r.req.tool_choice = r.req.tool_name = NULL;
    roundtrip(&r, &d);
    assert_null(d.req.tool_choice);
    assert_null(d.req.tool_name);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
