/* fuzz_json_schema.c -- JSON Schema to GBNF (src/grammar/json_schema.c and the schema_*,
 * regex_parse, gbnf_* files under it).
 *
 * The input is a schema (JSON text, any value). The converter either refuses it with a
 * message or returns a grammar it has checked itself (gbnf_check: every rule defined, no
 * left recursion); a grammar that comes back starts with a rule and ends with a newline,
 * and the same schema converted again gives the same grammar (no hidden state). The
 * prefixed form the tool grammars use (json_schema_rules) runs too. And libllama itself
 * must take the grammar (llama_sampler_init_grammar on a vocabulary-only model, as the
 * runner would): a grammar it refuses would fail a request that the API accepted. */
#include <jansson.h>
#include <llama.h>

#include "fuzz.h"
#include "grammar/json_schema.h"

static void quiet(enum ggml_log_level level, const char *text, void *ud) {}

static const struct llama_vocab *vocab(void)
{
    static struct llama_model *model;
    if (!model) {
        llama_log_set(quiet, NULL);
        llama_backend_init();
        struct llama_model_params mp = llama_model_default_params();
        mp.vocab_only = true;
        model = llama_model_load_from_file(BELLOWS_LLAMA_DIR "/models/ggml-vocab-llama-bpe.gguf", mp);
        if (!model) {
            fprintf(stderr, "fuzz_json_schema: cannot load the vocabulary\n");
            abort();
        }
    }
    return llama_model_get_vocab(model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct llama_vocab *v = vocab();
    if (size > 1 << 16)
        return 0;
    json_t *schema = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!schema)
        return 0;
    char *g = NULL;
    struct bw_err err = {0};
    if (json_schema_to_gbnf(schema, &g, &err) == BW_OK) {
        size_t n = strlen(g);
        FUZZ_CHECK(n > 0 && g[n - 1] == '\n');
        char *again = NULL;
        FUZZ_CHECK(json_schema_to_gbnf(schema, &again, &err) == BW_OK);
        FUZZ_CHECK(!strcmp(g, again));
        free(again);
        struct llama_sampler *smp = llama_sampler_init_grammar(v, g, "root");
        if (!smp)
            fprintf(stderr, "libllama refused the grammar:\n%s\n", g);
        FUZZ_CHECK(smp != NULL);
        llama_sampler_free(smp);
    } else {
        FUZZ_CHECK(err.msg[0]);
    }
    free(g);
    char *rules = NULL;
    if (json_schema_rules(schema, "tool0-", &rules, &err) == BW_OK)
        FUZZ_CHECK(rules != NULL);
    free(rules);
    json_decref(schema);
    return 0;
}
