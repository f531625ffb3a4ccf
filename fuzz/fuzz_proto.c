/* fuzz_proto.c -- the runner protocol decoder (src/proto/proto.c).
 *
 * The input is a byte stream as a runner's socket delivers it: proto_frame_next cuts it
 * into frames, and each payload is decoded both as a request (what the runner reads) and
 * as an event (what the server reads). A request or event that decodes is encoded again
 * and that frame must decode too (the encoder writes only what the decoder accepts). */
#include "fuzz.h"
#include "proto/proto.h"

static void roundtrip_request(const struct proto_request *r)
{
    uint8_t *frame = NULL;
    size_t frame_len = 0;
    if (proto_request_encode(r, &frame, &frame_len) != BW_OK)
        return; /* out of memory, or a field the encoder refuses */
    const uint8_t *payload;
    uint32_t plen;
    size_t used;
    FUZZ_CHECK(proto_frame_next(frame, frame_len, &payload, &plen, &used) == 1 && used == frame_len);
    struct proto_request again;
    struct bw_err err = {0};
    int rc = proto_request_decode(payload, plen, &again, &err);
    if (rc != BW_OK)
        fprintf(stderr, "re-decode: %s\n", err.msg);
    FUZZ_CHECK(rc == BW_OK);
    FUZZ_CHECK(again.type == r->type && again.id == r->id);
    proto_request_free(&again);
    free(frame);
}

static void roundtrip_event(const struct proto_event *ev)
{
    uint8_t *frame = NULL;
    size_t frame_len = 0;
    if (proto_event_encode(ev, &frame, &frame_len) != BW_OK)
        return;
    const uint8_t *payload;
    uint32_t plen;
    size_t used;
    FUZZ_CHECK(proto_frame_next(frame, frame_len, &payload, &plen, &used) == 1 && used == frame_len);
    struct proto_event again;
    struct bw_err err = {0};
    int rc = proto_event_decode(payload, plen, &again, &err);
    if (rc != BW_OK)
        fprintf(stderr, "re-decode: %s\n", err.msg);
    FUZZ_CHECK(rc == BW_OK);
    /* ready carries no id (the decoder reads one if present; the encoder writes none) */
    FUZZ_CHECK(again.type == ev->type && (ev->type == PROTO_EV_READY || again.id == ev->id));
    proto_event_free(&again);
    free(frame);
}

static void one_payload(const uint8_t *p, size_t n)
{
    struct bw_err err = {0};
    struct proto_request r;
    if (proto_request_decode(p, n, &r, &err) == BW_OK)
        roundtrip_request(&r);
    proto_request_free(&r);

    struct proto_event ev;
    if (proto_event_decode(p, n, &ev, &err) == BW_OK)
        roundtrip_event(&ev);
    proto_event_free(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Framed stream first; an input with no complete frame is tried as one bare payload
     * too, so the corpus can hold plain JSON messages. */
    size_t off = 0;
    int frames = 0;
    while (off < size && frames < 64) {
        const uint8_t *payload;
        uint32_t plen;
        size_t used;
        int rc = proto_frame_next(data + off, size - off, &payload, &plen, &used);
        if (rc != 1)
            break;
        FUZZ_CHECK(used >= 4 && used <= size - off && plen == used - 4);
        one_payload(payload, plen);
        off += used;
        frames++;
    }
    if (frames == 0)
        one_payload(data, size);
    return 0;
}
