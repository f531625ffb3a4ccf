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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_carries_think),
        cmocka_unit_test(token_event_carries_thinking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
