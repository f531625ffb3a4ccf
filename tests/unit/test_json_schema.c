/* test_json_schema.c -- unit tests for src/grammar/ (json_schema.h): JSON Schema to GBNF
 * (issue 11, item 4).
 *
 * tests/unit/json_schema_cases.json holds the schemas: "cases" are the shapes of llama.cpp's
 * tests/test-json-schema-to-grammar.cpp and the test_schema cases of
 * tests/test-grammar-integration.cpp (with texts that must pass and texts that must fail);
 * "generate" are the bounded schemas tests/api/structured.test.mjs generates from. Every
 * grammar must be taken by libllama (llama_sampler_init_grammar on a vocab-only model), and
 * each text is fed token by token through the grammar sampler: a passing text is never
 * refused and may end (end of generation allowed), a failing one is refused or cannot end.
 * Then the errors: unsupported keywords name themselves, bad references, recursion with
 * no end, left recursion, the limits. */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <llama.h>

#include "grammar/gbnf_compose.h"
#include "grammar/gbnf_int.h"
#include "grammar/json_schema.h"
#include "grammar_accepts.h"

#ifndef BELLOWS_SCHEMA_CASES
#error BELLOWS_SCHEMA_CASES must name tests/unit/json_schema_cases.json
#endif

static json_t *g_cases;

static int setup(void **state)
{
    if (grammar_vocab_load())
        return -1;
    json_error_t je;
    g_cases = json_load_file(BELLOWS_SCHEMA_CASES, 0, &je);
    if (!g_cases)
        fprintf(stderr, "%s:%d: %s\n", BELLOWS_SCHEMA_CASES, je.line, je.text);
    return g_cases ? 0 : -1;
}

static int teardown(void **state)
{
    json_decref(g_cases);
    grammar_vocab_free();
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static char *convert(const char *schema_text, struct bw_err *err)
{
    json_error_t je;
    json_t *s = json_loads(schema_text, JSON_DECODE_ANY, &je);
    assert_non_null(s);
    char *g = NULL;
    int rc = json_schema_to_gbnf(s, &g, err);
    json_decref(s);
    return rc == BW_OK ? g : NULL;
}

static char *dump(const json_t *v) { return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT); }

/* ---- the corpus --------------------------------------------------------------------------------- */

/* test-grammar-integration.cpp's test_schema cases and the shapes of
 * test-json-schema-to-grammar.cpp: what must pass passes, what must fail fails. */
static void cases_accept_and_reject(void **state)
{
    const json_t *cases = json_object_get(g_cases, "cases");
    assert_true(json_array_size(cases) >= 30);
    size_t i, n_texts = 0, n_bad = 0;
    const json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        char *schema = dump(json_object_get(c, "schema"));
        struct bw_err err = {0};
        char *g = convert(schema, &err);
        if (!g) {
            fprintf(stderr, "case \"%s\": %s\n", name, err.msg);
            n_bad++;
            free(schema);
            continue;
        }
        for (int want = 1; want >= 0; want--) {
            size_t k;
            const json_t *t;
            json_array_foreach(json_object_get(c, want ? "pass" : "fail"), k, t) {
                n_texts++;
                if (accepts(g, json_string_value(t)) != (bool)want) {
                    fprintf(stderr, "case \"%s\": %s %s\n%s\n", name, json_string_value(t),
                            want ? "was refused" : "was accepted", g);
                    n_bad++;
                }
            }
        }
        free(g);
        free(schema);
    }
    fprintf(stderr, "%zu schemas, %zu texts\n", json_array_size(cases), n_texts);
    assert_int_equal(n_bad, 0);
}

/* The API test's schemas: each converts, and libllama takes the grammar. */
static void generate_schemas_convert(void **state)
{
    const json_t *gen = json_object_get(g_cases, "generate");
    assert_true(json_array_size(gen) >= 30);
    size_t i;
    const json_t *c;
    json_array_foreach(gen, i, c) {
        char *schema = dump(json_object_get(c, "schema"));
        struct bw_err err = {0};
        char *g = convert(schema, &err);
        if (!g)
            fprintf(stderr, "generate \"%s\": %s\n", json_string_value(json_object_get(c, "name")), err.msg);
        assert_non_null(g);
        struct llama_sampler *s = llama_sampler_init_grammar(g_vocab, g, "root");
        assert_non_null(s);
        llama_sampler_free(s);
        free(g);
        free(schema);
    }
}

/* ---- shapes ---------------------------------------------------------------------------------------- */

/* Properties in their listed order, required first, each optional one after the previous
 * ones: llama.cpp's expected rule, word for word. */
static void object_rule_as_llama_cpp_writes_it(void **state)
{
    char *g = convert("{\"properties\": {\"b\": {\"type\": \"string\"}, \"a\": {\"type\": \"string\"}, \"d\": {\"type\": "
                      "\"string\"}, \"c\": {\"type\": \"string\"}}, \"required\": [\"a\", \"b\"], \"additionalProperties\": false}",
                      NULL);
    assert_non_null(g);
    assert_non_null(strstr(g, "root ::= \"{\" space b-kv \",\" space a-kv ( \",\" space ( d-kv d-rest | c-kv ) )? space \"}\"\n"));
    assert_non_null(strstr(g, "d-rest ::= ( \",\" space c-kv )?\n"));
    assert_non_null(strstr(g, "space ::= | \" \" | \"\\n\"{1,2} [ \\t]{0,20}\n"));
    free(g);
    g = convert("{\"type\": \"string\", \"pattern\": \"^abc?d*efg+(hij)?kl$\"}", NULL);
    assert_non_null(g);
    assert_non_null(strstr(g, "root ::= \"\\\"\" (\"ab\" \"c\"? \"d\"* \"ef\" \"g\"+ (\"hij\")? \"kl\") \"\\\"\"\n"));
    free(g);
}

/* maxLength / maxItems over the repetition limit: the grammar allows at most the limit. */
static void large_maximum_is_lowered(void **state)
{
    char *g = convert("{\"type\": \"string\", \"maxLength\": 5000}", NULL);
    assert_non_null(g);
    assert_non_null(strstr(g, "char{0,1000}"));
    free(g);
    g = convert("{\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"maxItems\": 100000}", NULL);
    assert_non_null(g);
    assert_non_null(strstr(g, "{0,999}"));
    free(g);
}

/* A number bound far past the 16 digits generated (9e50, beyond long long) drops out; the
 * other bound still holds (a fuzzer found the dropped one converted to long long anyway). */
static void bound_past_long_long_drops_out(void **state)
{
    char *g = convert("{\"type\": \"number\", \"minimum\": -9e50, \"maximum\": 3}", NULL);
    assert_non_null(g);
    assert_true(accepts(g, "-123456789"));
    assert_true(accepts(g, "2.5"));
    assert_false(accepts(g, "4"));
    free(g);
    g = convert("{\"type\": \"number\", \"minimum\": 2, \"maximum\": 9e50}", NULL);
    assert_non_null(g);
    assert_true(accepts(g, "123456789"));
    assert_false(accepts(g, "1"));
    free(g);
    g = convert("{\"type\": \"integer\", \"enum\": [1e50, 2]}", NULL);
    assert_non_null(g);
    free(g);
}

/* ---- errors ---------------------------------------------------------------------------------------- */

static void expect_error(const char *schema, const char *needle)
{
    struct bw_err err = {0};
    char *g = convert(schema, &err);
    if (g)
        fprintf(stderr, "expected an error for %s, got\n%s\n", schema, g);
    assert_null(g);
    assert_int_equal(err.code, BW_EINVAL);
    if (!strstr(err.msg, needle))
        fprintf(stderr, "for %s: \"%s\" does not say \"%s\"\n", schema, err.msg, needle);
    assert_non_null(strstr(err.msg, needle));
}

static void unsupported_keywords_are_named(void **state)
{
    expect_error("{\"not\": {\"type\": \"string\"}}", "keyword 'not'");
    expect_error("{\"type\": \"integer\", \"multipleOf\": 3}", "'multipleOf'");
    expect_error("{\"if\": {\"type\": \"string\"}, \"then\": {\"maxLength\": 2}}", "'if'");
    expect_error("{\"type\": \"object\", \"patternProperties\": {\"^x\": {}}}", "'patternProperties'");
    expect_error("{\"type\": \"object\", \"minProperties\": 1}", "'minProperties'");
    expect_error("{\"type\": \"array\", \"contains\": {\"type\": \"integer\"}}", "'contains'");
    expect_error("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"object\", \"propertyNames\": {\"pattern\": \"^x\"}}}}",
                 "'propertyNames' is not supported (at #/properties/a)");
    /* what changes nothing is accepted */
    struct bw_err err = {0};
    char *g = convert("{\"type\": \"array\", \"uniqueItems\": false, \"minProperties\": 0, \"title\": \"t\", \"x-unknown\": 1}", &err);
    assert_non_null(g);
    free(g);
    /* uniqueItems: true is accepted, not enforced (Pydantic's sets), as llama.cpp and Ollama */
    g = convert("{\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"uniqueItems\": true}", &err);
    assert_non_null(g);
    free(g);
}

static void bad_schemas(void **state)
{
    expect_error("{\"type\": \"kaboom\"}", "unknown type \"kaboom\"");
    expect_error("{\"type\": 123}", "type must be");
    expect_error("false", "false");
    expect_error("{\"$ref\": \"https://example.com/s.json\"}", "only references inside the schema");
    expect_error("{\"$ref\": \"#/$defs/missing\"}", "points to nothing");
    expect_error("{\"type\": \"string\", \"minLength\": 5, \"maxLength\": 2}", "minLength is larger than maxLength");
    expect_error("{\"type\": \"string\", \"minLength\": 5000}", "minLength over 1000");
    expect_error("{\"type\": \"integer\", \"minimum\": 5, \"maximum\": 2}", "minimum is above maximum");
    expect_error("{\"type\": \"string\", \"enum\": [1, 2]}", "no enum value is of type \"string\"");
    expect_error("{\"allOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}", "types have nothing in common");
    expect_error("{\"type\": \"object\", \"properties\": {\"a\": {}}, \"required\": [\"b\"], \"additionalProperties\": false}",
                 "required property \"b\" is not in properties");
    expect_error("{\"prefixItems\": [{\"type\": \"string\"}], \"items\": false, \"minItems\": 3}",
                 "minItems 3");
}

static void patterns_without_grammar_form(void **state)
{
    expect_error("{\"type\": \"string\", \"pattern\": \"^(?=a)b$\"}", "lookahead");
    expect_error("{\"type\": \"string\", \"pattern\": \"^(a)\\\\1$\"}", "backreferences");
    expect_error("{\"type\": \"string\", \"pattern\": \"^a\\\\bb$\"}", "word boundary");
    expect_error("{\"type\": \"string\", \"pattern\": \"^a|^b$\"}", "anchors inside");
    expect_error("{\"type\": \"string\", \"pattern\": \"^(a$\"}", "unbalanced parentheses");
    expect_error("{\"type\": \"string\", \"pattern\": \"^[a-\"}", "unterminated character class");
    expect_error("{\"type\": \"string\", \"pattern\": \"^*a$\"}", "nothing to repeat");
    expect_error("{\"type\": \"string\", \"pattern\": \"^\\\\p{L}$\"}", "Unicode properties");
    expect_error("{\"type\": \"string\", \"pattern\": \"^a*$\", \"minLength\": 1}", "'minLength' next to pattern");
    expect_error("{\"type\": \"string\", \"pattern\": \"^a{5}$\", \"maxLength\": 3}", "'maxLength' next to pattern");
    expect_error("{\"type\": \"string\", \"format\": \"date\", \"maxLength\": 5}", "'maxLength' next to format \"date\"");
}

/* Schemas that recurse forever: no finite instance, or a cycle that reads nothing. */
static void recursion_without_end(void **state)
{
    expect_error("{\"$ref\": \"#/$defs/n\", \"$defs\": {\"n\": {\"type\": \"object\", \"properties\": {\"next\": "
                 "{\"$ref\": \"#/$defs/n\"}}, \"required\": [\"next\"]}}}",
                 "no finite instance");
    expect_error("{\"$ref\": \"#/$defs/a\", \"$defs\": {\"a\": {\"anyOf\": [{\"$ref\": \"#/$defs/a\"}, {\"type\": \"null\"}]}}}",
                 "left recursion");
    expect_error("{\"$ref\": \"#/$defs/a\", \"$defs\": {\"a\": {\"$ref\": \"#/$defs/b\"}, \"b\": {\"$ref\": \"#/$defs/a\"}}}",
                 "left recursion");
    expect_error("{\"allOf\": [{\"$ref\": \"#\"}]}", "nested deeper");
    expect_error("{\"$ref\": \"#\", \"$defs\": {}}", "left recursion");
}

static void limits(void **state)
{
    /* depth */
    char buf[4096] = "";
    for (int i = 0; i < 100; i++)
        strcat(buf, "{\"items\": ");
    strcat(buf, "{}");
    for (int i = 0; i < 100; i++)
        strcat(buf, "}");
    expect_error(buf, "nested deeper than 64");
    /* rules */
    json_t *props = json_object();
    for (int i = 0; i < 5000; i++) {
        char k[32];
        snprintf(k, sizeof k, "p%d", i);
        json_object_set_new(props, k, json_pack("{s:s}", "type", "string"));
    }
    json_t *s = json_pack("{s:s, s:o}", "type", "object", "properties", props);
    char *text = dump(s);
    expect_error(text, "more than 4096 grammar rules");
    free(text);
    json_decref(s);
    /* bytes */
    size_t n = 2u << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    s = json_pack("{s:[s]}", "enum", big);
    free(big);
    text = dump(s);
    expect_error(text, "larger than 1048576 bytes");
    free(text);
    json_decref(s);
}

/* ---- composing grammars (gbnf_compose.h) ------------------------------------------------------ */

/* A schema's rules under a prefix: every name renamed (literals, classes and counts left
 * as they are), and the result still means the same once given a root. */
static void rules_under_a_prefix(void **state)
{
    (void)state;
    json_t *s = json_loads("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":5}},"
                           "\"required\":[\"city\"]}", 0, NULL);
    char *g = NULL;
    assert_int_equal(json_schema_rules(s, "tool3-", &g, NULL), BW_OK);
    json_decref(s);
    assert_non_null(strstr(g, "tool3-root ::= "));
    assert_null(strstr(g, "\nroot ::= "));
    assert_null(strstr(g, " space"));
    assert_non_null(strstr(g, "\"\\\"city\\\"\"")); /* the literal is untouched */
    struct textbuf b = {0};
    textbuf_add(&b, "root ::= \"x\" tool3-root\n");
    textbuf_add(&b, g);
    assert_true(accepts(textbuf_str(&b), "x{\"city\": \"Paris\"}"));
    assert_false(accepts(textbuf_str(&b), "x{\"city\": \"Parisss\"}"));
    assert_false(accepts(textbuf_str(&b), "x{}"));
    textbuf_fini(&b);
    free(g);
    assert_null(gbnf_prefix_rules("root ::= \"a\"\n", "bad prefix"));
}

/* Thinking first: any text without the marker, the marker, then the grammar. */
static void grammar_after_a_reasoning_block(void **state)
{
    (void)state;
    char *inner = convert("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}},\"required\":[\"n\"]}", NULL);
    assert_non_null(inner);
    char *g = gbnf_after_marker(inner, "</think>", 200);
    assert_non_null(g);
    assert_true(accepts(g, "</think>{\"n\": 1}"));
    assert_true(accepts(g, "Let me see: a < b, </b> is </thin ... ok.\n</think>\n\n{\"n\": 42}"));
    assert_false(accepts(g, "a </think> b </think>{\"n\": 1}")); /* the marker closes it */
    assert_false(accepts(g, "thinking {\"n\": 1}"));              /* never closed */
    assert_false(accepts(g, "</think>{\"n\": \"x\"}"));
    free(g);
    g = gbnf_after_marker(inner, "</think>", 3);
    assert_true(accepts(g, "abc</think>{\"n\": 1}"));
    assert_false(accepts(g, "abcd</think>{\"n\": 1}")); /* bounded */
    free(g);
    assert_null(gbnf_after_marker(inner, "", 10));
    assert_null(gbnf_after_marker(inner, "<a<", 10)); /* its first character comes back */
    free(inner);
}

/* ---- UTF-8 split across tokens vs maxLength ---------------------------------------------------
 * A byte-level vocabulary has a token for every byte, so a model can write a character one
 * byte at a time, or bytes that are no character at all. libllama's grammar counts a
 * character when its sequence completes and lets a token end inside one only where a
 * character may still go; what reaches the client is made valid UTF-8 after the grammar
 * (the engine's textout: one U+FFFD for a sequence cut at the end, one per ill-formed
 * part). So a string held to maxLength N must never take bytes that decode to a code point
 * no valid UTF-8 writes (a surrogate half, above U+10FFFF): the grammar would count one
 * character where the repaired text has three or four U+FFFD. */

static llama_token g_byte_tok[256]; /* the token of each byte, plus one (0: none yet) */

/* The token whose piece is the single byte b (llama-bpe has one for each). */
static llama_token byte_token(unsigned char b)
{
    if (!g_byte_tok[1]) {
        int n = llama_vocab_n_tokens(g_vocab);
        for (llama_token t = 0; t < n; t++) {
            char piece[8];
            if (llama_token_to_piece(g_vocab, t, piece, sizeof piece, 0, false) == 1 && !g_byte_tok[(unsigned char)piece[0]])
                g_byte_tok[(unsigned char)piece[0]] = t + 1;
        }
        for (int i = 1; i < 256; i++)
            assert_true(g_byte_tok[i] != 0);
    }
    return g_byte_tok[b] - 1;
}

/* How many of the tokens the grammar takes in a row: the bytes of text, one token each
 * (every byte its own token, as a model may sample them), then end of generation, which
 * counts as one more when allowed. */
static int taken_bytes(const char *grammar, const char *text)
{
    struct llama_sampler *s = llama_sampler_init_grammar(g_vocab, grammar, "root");
    assert_non_null(s);
    int i = 0, n = (int)strlen(text);
    for (; i <= n; i++) {
        llama_token t = i < n ? byte_token((unsigned char)text[i]) : llama_vocab_eos(g_vocab);
        llama_token_data d = {.id = t, .logit = 0.0f, .p = 0.0f};
        llama_token_data_array a = {.data = &d, .size = 1, .selected = -1, .sorted = false};
        llama_sampler_apply(s, &a);
        if (d.logit == -INFINITY)
            break;
        if (i < n)
            llama_sampler_accept(s, t);
    }
    llama_sampler_free(s);
    return i;
}

static void utf8_bytes_vs_max_length(void **state)
{
    (void)state;
    struct bw_err err = {0};
    char *g = convert("{\"type\": \"string\", \"maxLength\": 3}", &err);
    assert_non_null(g);
    /* é (C3 A9) and ✓ (E2 9C 93) byte by byte: each one character (all bytes and the end
     * taken: strlen + 1) */
    assert_int_equal(taken_bytes(g, "\"ab\xc3\xa9\""), 7);
    assert_int_equal(taken_bytes(g, "\"\xe2\x9c\x93\xe2\x9c\x93\xc3\xa9\""), 11);
    /* a 4th character may not even begin: its first byte is refused where only '"' goes */
    assert_int_equal(taken_bytes(g, "\"ab\xc3\xa9\xc3"), 5);
    assert_int_equal(taken_bytes(g, "\"abc\xf0"), 4);
    /* a sequence cut by the end of generation cannot end the string */
    assert_int_equal(taken_bytes(g, "\"ab\xc3"), 4);
    /* bytes no valid UTF-8 has: refused where they stop being a possible character */
    assert_int_equal(taken_bytes(g, "\"\xed\xa0\x80\""), 2);     /* U+D800, a surrogate half */
    assert_int_equal(taken_bytes(g, "\"\xed\xbf\xbf\""), 2);     /* U+DFFF */
    assert_int_equal(taken_bytes(g, "\"\xf4\x90\x80\x80\""), 2); /* U+110000 */
    assert_int_equal(taken_bytes(g, "\"\xf5\x80\x80\x80\""), 1); /* no code point */
    assert_int_equal(taken_bytes(g, "\"\xc1\x81\""), 1);         /* overlong 'A' */
    assert_int_equal(taken_bytes(g, "\"\x80\""), 1);             /* a lone continuation byte */
    /* the characters next to the holes still pass */
    assert_int_equal(taken_bytes(g, "\"\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf\""), 13); /* U+D7FF U+E000 U+10FFFF */
    free(g);
    /* the same holds for the other string rules: a pattern's '.', an additional key, a format-less string */
    static const char *const others[] = {
        "{\"type\": \"string\", \"pattern\": \"^.{1,3}$\"}",
        "{\"type\": \"object\", \"additionalProperties\": {\"type\": \"integer\"}}",
        "{\"type\": \"string\"}",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        g = convert(others[i], &err);
        assert_non_null(g);
        const char *open = i == 1 ? "{\"" : "\"";
        char text[32];
        snprintf(text, sizeof text, "%s\xed\xa0\x80", open);
        assert_int_equal(taken_bytes(g, text), (int)strlen(open) + 1);
        snprintf(text, sizeof text, "%s\xf4\x90\x80\x80", open);
        assert_int_equal(taken_bytes(g, text), (int)strlen(open) + 1);
        snprintf(text, sizeof text, "%s\xc3\xa9", open);
        assert_int_equal(taken_bytes(g, text), (int)strlen(open) + 2);
        snprintf(text, sizeof text, "%s\xe2\x80\xa6\xed\x95\x9c", open); /* … and 한, a byte a token */
        assert_int_equal(taken_bytes(g, text), (int)strlen(open) + 6);
        free(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cases_accept_and_reject),
        cmocka_unit_test(generate_schemas_convert),
        cmocka_unit_test(object_rule_as_llama_cpp_writes_it),
        cmocka_unit_test(large_maximum_is_lowered),
        cmocka_unit_test(bound_past_long_long_drops_out),
        cmocka_unit_test(unsupported_keywords_are_named),
        cmocka_unit_test(bad_schemas),
        cmocka_unit_test(patterns_without_grammar_form),
        cmocka_unit_test(recursion_without_end),
        cmocka_unit_test(limits),
        cmocka_unit_test(rules_under_a_prefix),
        cmocka_unit_test(grammar_after_a_reasoning_block),
        cmocka_unit_test(utf8_bytes_vs_max_length),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
