/* test_registry.c -- src/registry's pure parts: names to pull and their URLs (names.c),
 * the Range-part plan and its progress file (parts.c), and the two headers the client
 * reads (WWW-Authenticate, Content-Range; client.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "registry/registry_int.h"

#define MiB (1ull << 20)
#define DIGEST "sha256:9d388e74ece18feb60182959d8acc1f0551be230d6e347199b52d6f7f60ffea7"

/* ---- names ------------------------------------------------------------------------------------ */

static void names_take_ollamas_defaults(void **state)
{
    (void)state;
    struct registry_ref r;
    char url[REGISTRY_URL_MAX];
    assert_int_equal(registry_ref_parse("llama3.2", false, &r, NULL), 0);
    assert_string_equal(r.name.host, "registry.ollama.ai");
    assert_string_equal(r.name.ns, "library");
    assert_string_equal(r.name.model, "llama3.2");
    assert_string_equal(r.name.tag, "latest");
    assert_string_equal(r.base, "https://registry.ollama.ai");
    assert_string_equal(r.repo, "library/llama3.2");
    registry_manifest_url(&r, url);
    assert_string_equal(url, "https://registry.ollama.ai/v2/library/llama3.2/manifests/latest");
    registry_blob_url(&r, DIGEST, url);
    assert_string_equal(url, "https://registry.ollama.ai/v2/library/llama3.2/blobs/" DIGEST);

    assert_int_equal(registry_ref_parse("me/qwen2.5:0.5b-instruct-q8_0", false, &r, NULL), 0);
    assert_string_equal(r.name.host, "registry.ollama.ai");
    assert_string_equal(r.repo, "me/qwen2.5");
    assert_string_equal(r.name.tag, "0.5b-instruct-q8_0");
}

static void names_hugging_face_and_own_registries(void **state)
{
    (void)state;
    struct registry_ref r;
    char url[REGISTRY_URL_MAX];
    assert_int_equal(registry_ref_parse("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", false, &r, NULL), 0);
    assert_string_equal(r.name.host, "hf.co");
    assert_string_equal(r.name.ns, "bartowski");
    assert_string_equal(r.name.model, "Llama-3.2-1B-Instruct-GGUF");
    assert_string_equal(r.name.tag, "Q4_K_M");
    registry_manifest_url(&r, url);
    assert_string_equal(url, "https://hf.co/v2/bartowski/Llama-3.2-1B-Instruct-GGUF/manifests/Q4_K_M");
    assert_int_equal(registry_ref_parse("hf.co/unsloth/gemma-3-270m-it-GGUF", false, &r, NULL), 0);
    assert_string_equal(r.name.tag, "latest"); /* Hugging Face picks the quantization */

    /* a port belongs to the host; the tag is after the last ':' past the last '/' */
    assert_int_equal(registry_ref_parse("127.0.0.1:5000/team/tiny:v1", true, &r, NULL), 0);
    assert_string_equal(r.name.host, "127.0.0.1:5000");
    assert_string_equal(r.name.tag, "v1");
    assert_string_equal(r.base, "http://127.0.0.1:5000"); /* insecure: plain HTTP, as Ollama */
    assert_int_equal(registry_ref_parse("127.0.0.1:5000/team/tiny", false, &r, NULL), 0);
    assert_string_equal(r.base, "https://127.0.0.1:5000");
    assert_string_equal(r.name.tag, "latest");
    /* an explicit scheme is kept */
    assert_int_equal(registry_ref_parse("https://example.com/team/tiny", true, &r, NULL), 0);
    assert_string_equal(r.base, "https://example.com");
    assert_string_equal(r.name.host, "example.com");
}

static void names_refuse_plain_http_and_bad_names(void **state)
{
    (void)state;
    struct registry_ref r = {.scheme = "x"};
    struct bw_err e;
    assert_int_equal(registry_ref_parse("http://127.0.0.1:5000/team/tiny", false, &r, &e), BW_EINVAL);
    assert_non_null(strstr(e.msg, "insecure protocol http"));
    assert_string_equal(r.scheme, "x"); /* untouched */
    assert_int_equal(registry_ref_parse("http://127.0.0.1:5000/team/tiny", true, &r, &e), 0);
    assert_string_equal(r.base, "http://127.0.0.1:5000");
    const char *bad[] = {"", "../etc/passwd", "a/b/c/d", "ftp://x/y/z", "x//y", "model:", "a b", "ns.dot/model"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(registry_ref_parse(bad[i], true, &r, &e), BW_EINVAL);
    assert_int_equal(registry_ref_parse(NULL, false, &r, &e), BW_EINVAL);
}

/* ---- the Range plan ---------------------------------------------------------------------------- */

static void assert_covers(const struct registry_part *p, int n, uint64_t total)
{
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(p[i].offset, off);
        assert_true(p[i].size > 0);
        assert_int_equal(p[i].completed, 0);
        off += p[i].size;
    }
    assert_int_equal(off, total);
}

static void parts_small_blobs_are_one_part_large_ones_four(void **state)
{
    (void)state;
    struct registry_part p[REGISTRY_MAX_PARTS];
    assert_int_equal(registry_plan_parts(0, 0, 0, p), 0);
    assert_int_equal(registry_plan_parts(13, 0, 0, p), 1);
    assert_covers(p, 1, 13);
    assert_int_equal(registry_plan_parts(127 * MiB, 0, 0, p), 1); /* under twice 64 MiB */
    assert_covers(p, 1, 127 * MiB);
    assert_int_equal(registry_plan_parts(128 * MiB, 0, 0, p), 2);
    assert_covers(p, 2, 128 * MiB);
    assert_int_equal(p[0].size, 64 * MiB);
    assert_int_equal(registry_plan_parts(200 * MiB, 0, 0, p), 3);
    assert_covers(p, 3, 200 * MiB);
    for (int i = 0; i < 3; i++)
        assert_true(p[i].size >= 64 * MiB);
    uint64_t big = 4700000000ull + 3; /* a 4.7 GB model, not a multiple of 4 */
    assert_int_equal(registry_plan_parts(big, 0, 0, p), REGISTRY_MAX_PARTS);
    assert_covers(p, 4, big);
    for (int i = 1; i < 4; i++)
        assert_true(p[0].size - p[i].size <= 1); /* nearly equal */
}

static void parts_honour_the_minimum_and_the_maximum(void **state)
{
    (void)state;
    struct registry_part p[REGISTRY_MAX_PARTS];
    uint64_t total = 26674208; /* the demo model */
    assert_int_equal(registry_plan_parts(total, 4 * MiB, 0, p), 4);
    assert_covers(p, 4, total);
    assert_int_equal(registry_plan_parts(total, 4 * MiB, 2, p), 2);
    assert_covers(p, 2, total);
    assert_int_equal(registry_plan_parts(total, 4 * MiB, 99, p), REGISTRY_MAX_PARTS); /* never more */
    assert_int_equal(registry_plan_parts(total, 10 * MiB, 0, p), 2);
    assert_int_equal(registry_plan_parts(total, UINT64_MAX, 1, p), 1);
    assert_covers(p, 1, total);
    assert_int_equal(registry_plan_parts(3, 1, 0, p), 3); /* tiny parts for tests: one byte each */
    assert_covers(p, 3, 3);
}

static void parts_file_round_trips(void **state)
{
    (void)state;
    struct registry_part p[REGISTRY_MAX_PARTS], q[REGISTRY_MAX_PARTS];
    uint64_t total = 26674208;
    int n = registry_plan_parts(total, 4 * MiB, 0, p);
    p[0].completed = p[0].size;
    p[2].completed = 12345;
    char text[1024];
    size_t len = registry_parts_format(DIGEST, total, p, n, text, sizeof text);
    assert_true(len > 0);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "bellows-parts 1\ndigest " DIGEST "\ntotal 26674208\npart 0 6668552 6668552\n"));
    assert_int_equal(registry_parts_parse(text, DIGEST, total, q, REGISTRY_MAX_PARTS), n);
    assert_memory_equal(p, q, (size_t)n * sizeof *p);
    /* an empty blob has no parts */
    len = registry_parts_format(DIGEST, 0, p, 0, text, sizeof text);
    assert_int_equal(registry_parts_parse(text, DIGEST, 0, q, REGISTRY_MAX_PARTS), 0);
    /* too small a buffer */
    assert_int_equal(registry_parts_format(DIGEST, total, p, n, text, 40), 0);
}

static void parts_file_that_does_not_fit_starts_afresh(void **state)
{
    (void)state;
    struct registry_part q[REGISTRY_MAX_PARTS];
    const char *good = "bellows-parts 1\ndigest " DIGEST "\ntotal 100\npart 0 60 10\npart 60 40 40\n";
    assert_int_equal(registry_parts_parse(good, DIGEST, 100, q, REGISTRY_MAX_PARTS), 2);
    assert_int_equal(q[1].completed, 40);
    const char *other_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(registry_parts_parse(good, other_digest, 100, q, REGISTRY_MAX_PARTS), -1);
    assert_int_equal(registry_parts_parse(good, DIGEST, 101, q, REGISTRY_MAX_PARTS), -1); /* another size */
    assert_int_equal(registry_parts_parse(good, DIGEST, 100, q, 1), -1);                  /* too many parts */
    const char *bad[] = {
        NULL, "", "garbage",
        "bellows-parts 2\ndigest " DIGEST "\ntotal 100\npart 0 100 0\n",          /* another version */
        "bellows-parts 1\ndigest " DIGEST "\ntotal 100\npart 0 60 10\n",          /* a gap at the end */
        "bellows-parts 1\ndigest " DIGEST "\ntotal 100\npart 0 60 10\npart 50 50 0\n", /* overlap */
        "bellows-parts 1\ndigest " DIGEST "\ntotal 100\npart 0 100 101\n",        /* more done than asked */
        "bellows-parts 1\ndigest " DIGEST "\ntotal 100\npart 0 0 0\npart 0 100 0\n", /* an empty part */
        "bellows-parts 1\ndigest " DIGEST "\ntotal 100\npart 0 100 0 junk\n",
        "bellows-parts 1\ndigest " DIGEST "\ntotal 100\npart 0 100 -5\n",
        "bellows-parts 1\ndigest " DIGEST "\ntotal 100x\npart 0 100 0\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(registry_parts_parse(bad[i], DIGEST, 100, q, REGISTRY_MAX_PARTS), -1);
}

/* ---- headers ----------------------------------------------------------------------------------- */

static void challenge_reads_docker_bearer_headers(void **state)
{
    (void)state;
    struct registry_challenge c;
    assert_true(registry__parse_challenge(
        "Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\","
        "scope=\"repository:library/llama3:pull,push\"",
        &c));
    assert_string_equal(c.realm, "https://auth.example.com/token");
    assert_string_equal(c.service, "registry.example.com");
    assert_string_equal(c.scope, "repository:library/llama3:pull,push"); /* a comma inside quotes */
    assert_true(registry__parse_challenge("bearer  scope=repository:a/b:pull, realm=http://127.0.0.1:9/token", &c));
    assert_string_equal(c.realm, "http://127.0.0.1:9/token");
    assert_string_equal(c.scope, "repository:a/b:pull");
    assert_string_equal(c.service, "");
    assert_true(registry__parse_challenge("Bearer realm=\"https://x/t\\\"q\",error=\"invalid_token\"", &c));
    assert_string_equal(c.realm, "https://x/t\"q");
    assert_false(registry__parse_challenge("Basic realm=\"x\"", &c));
    assert_false(registry__parse_challenge("Bearer service=\"x\"", &c)); /* no realm */
    assert_false(registry__parse_challenge("Bearerrealm=\"x\"", &c));
    assert_false(registry__parse_challenge("", &c));
    assert_false(registry__parse_challenge(NULL, &c));
}

static void content_range_gives_the_start(void **state)
{
    (void)state;
    uint64_t a, b;
    assert_true(registry__parse_content_range("bytes 100-199/1000", &a, &b));
    assert_int_equal(a, 100);
    assert_int_equal(b, 199);
    assert_true(registry__parse_content_range("bytes 0-0/*", &a, &b));
    assert_int_equal(a, 0);
    assert_false(registry__parse_content_range("bytes */1000", &a, &b));
    assert_false(registry__parse_content_range("bytes 9-3/10", &a, &b));
    assert_false(registry__parse_content_range(NULL, &a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_take_ollamas_defaults),
        cmocka_unit_test(names_hugging_face_and_own_registries),
        cmocka_unit_test(names_refuse_plain_http_and_bad_names),
        cmocka_unit_test(parts_small_blobs_are_one_part_large_ones_four),
        cmocka_unit_test(parts_honour_the_minimum_and_the_maximum),
        cmocka_unit_test(parts_file_round_trips),
        cmocka_unit_test(parts_file_that_does_not_fit_starts_afresh),
        cmocka_unit_test(challenge_reads_docker_bearer_headers),
        cmocka_unit_test(content_range_gives_the_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
