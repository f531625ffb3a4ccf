/* toolcall_expect.h -- for the tool-call unit tests: a sink that records content and calls,
 * and expect(): an answer gives the same content and calls whole, in 1-byte pieces and cut
 * in two at every position. Included by one test file each (static functions); the
 * includer includes cmocka and template/toolcall.h first and defines BELLOWS_LLAMA_DIR. */
#ifndef BELLOWS_TEST_TOOLCALL_EXPECT_H
#define BELLOWS_TEST_TOOLCALL_EXPECT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"},\"zip\":{\"type\":\"string\"},"
    "\"metric\":{\"type\":\"boolean\"}}}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{}}}}]";

/* ---- a sink that records everything ------------------------------------------------------ */

struct sink {
    char content[8192];
    size_t n_content;
    char calls[4096]; /* "name args [id]|" per call */
    size_t n_calls_text;
    int n_calls;
    int pieces;
};

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = p[i] < 0x80 ? 1 : (p[i] & 0xE0) == 0xC0 ? 2 : (p[i] & 0xF0) == 0xE0 ? 3 : (p[i] & 0xF8) == 0xF0 ? 4 : 0;
        if (!k || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

static void on_content(void *ud, const char *text, size_t len)
{
    struct sink *k = ud;
    assert_true(len > 0);
    assert_true(utf8_valid(text, len));
    assert_true(k->n_content + len < sizeof k->content);
    memcpy(k->content + k->n_content, text, len);
    k->n_content += len;
    k->content[k->n_content] = '\0';
    k->pieces++;
}

static void on_call(void *ud, const struct toolcall *c)
{
    struct sink *k = ud;
    assert_int_equal(c->index, k->n_calls);
    char longer[32];
    const char *args = c->arguments;
    if (strlen(args) > 1000) /* long_call_in_one_piece */
        snprintf(longer, sizeof longer, "<%zu bytes>", strlen(args)), args = longer;
    int n = snprintf(k->calls + k->n_calls_text, sizeof k->calls - k->n_calls_text, "%s %s%s%s|", c->name, args,
                     c->id ? " " : "", c->id ? c->id : "");
    assert_true(n > 0 && (size_t)n < sizeof k->calls - k->n_calls_text);
    k->n_calls_text += (size_t)n;
    k->n_calls++;
}

static struct toolcall_cfg cfg_of(const char *tmpl)
{
    struct toolcall_cfg c;
    toolcall_detect(tmpl, &c);
    return c;
}

/* Feeds text cut at the given points (ascending) and finishes. */
static void feed_cuts(const struct toolcall_cfg *cfg, const char *tools, const char *text, const size_t *cuts,
                      size_t n_cuts, struct sink *k)
{
    struct toolcall_parser p;
    struct toolcall_sink sk = {on_content, on_call, k};
    memset(k, 0, sizeof *k);
    toolcall_init(&p, cfg, tools);
    size_t at = 0, len = strlen(text);
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        toolcall_feed(&p, text + at, end - at, &sk);
        at = end;
    }
    toolcall_finish(&p, &sk);
    assert_int_equal(toolcall_count(&p), k->n_calls);
    toolcall_fini(&p);
}

static void feed_bytes(const struct toolcall_cfg *cfg, const char *tools, const char *text, struct sink *k)
{
    size_t len = strlen(text);
    size_t *cuts = malloc((len ? len : 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 1; i < len; i++)
        cuts[i - 1] = i;
    feed_cuts(cfg, tools, text, cuts, len ? len - 1 : 0, k);
    free(cuts);
}

/* The answer `text` gives `content` and `calls` ("name args|…"), however it is cut. */
static void expect_with(const struct toolcall_cfg *cfg, const char *tools, const char *text, const char *content,
                        const char *calls)
{
    struct sink k;
    feed_cuts(cfg, tools, text, NULL, 0, &k);
    assert_string_equal(k.content, content);
    assert_string_equal(k.calls, calls);
    feed_bytes(cfg, tools, text, &k);
    assert_string_equal(k.content, content);
    assert_string_equal(k.calls, calls);
    size_t len = strlen(text);
    for (size_t cut = 1; cut < len; cut++) {
        feed_cuts(cfg, tools, text, &cut, 1, &k);
        assert_string_equal(k.content, content);
        assert_string_equal(k.calls, calls);
    }
}

static void expect(const struct toolcall_cfg *cfg, const char *text, const char *content, const char *calls)
{
    expect_with(cfg, TOOLS, text, content, calls);
}

/* A malformed call: everything comes back as content, as written. */
static void expect_content(const struct toolcall_cfg *cfg, const char *text) { expect(cfg, text, text, ""); }

static char *read_template(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/models/templates/%s", BELLOWS_LLAMA_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

#endif
