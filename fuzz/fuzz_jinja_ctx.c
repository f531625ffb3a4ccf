/* fuzz_jinja_ctx.c -- real chat templates (fuzz/templates/, a few of the pinned llama.cpp's
 * models/templates) rendered with a fuzzed context, through chat_template.c as the runner
 * renders them.
 *
 * Input: byte 0 picks the template; the rest is JSON. An array is the request's messages,
 * each brought to the template's conventions by chat_message_normalize as the API does
 * (a message it refuses ends the case); an object is rendered as the template's whole
 * context (jinja_render), so values of any shape reach the template. The templates are
 * read once, from BELLOWS_FUZZ_TEMPLATES (the folder is compiled in). */
#define _GNU_SOURCE
#include <dirent.h>
#include <jansson.h>

#include "fuzz.h"
#include "template/chat_template.h"
#include "template/jinja.h"

#define MAX_TEMPLATES 32

static struct chat_template *tmpls[MAX_TEMPLATES];
static struct jinja_tmpl *raw[MAX_TEMPLATES];
static size_t n_tmpls;

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void load(void)
{
    static int loaded;
    if (loaded)
        return;
    loaded = 1;
    const char *dir = getenv("BELLOWS_FUZZ_TEMPLATES");
    if (!dir)
        dir = BELLOWS_FUZZ_TEMPLATES;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz_jinja_ctx: cannot open %s\n", dir);
        abort();
    }
    char *names[MAX_TEMPLATES];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_TEMPLATES)
        if (e->d_name[0] != '.' && asprintf(&names[n], "%s/%s", dir, e->d_name) >= 0)
            n++;
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names); /* the same byte picks the same template */
    for (size_t i = 0; i < n; i++) {
        FILE *f = fopen(names[i], "rb");
        char *text = NULL;
        size_t len = 0;
        if (f) {
            FILE *m = open_memstream(&text, &len);
            int c;
            while ((c = fgetc(f)) != EOF)
                fputc(c, m);
            fclose(m);
            fclose(f);
        }
        struct bw_err err = {0};
        if (text && chat_template_parse(text, &tmpls[n_tmpls], &err) == BW_OK &&
            jinja_parse(text, len, &raw[n_tmpls], &err) == BW_OK)
            n_tmpls++;
        else
            fprintf(stderr, "fuzz_jinja_ctx: %s: %s\n", names[i], err.msg);
        free(text);
        free(names[i]);
    }
    if (!n_tmpls) {
        fprintf(stderr, "fuzz_jinja_ctx: no template in %s\n", dir);
        abort();
    }
}

static void render_messages(const struct chat_template *t, const json_t *arr, const char *think)
{
    size_t n = json_array_size(arr);
    if (n > 64)
        return;
    json_t *norm[64];
    struct policy_msg msgs[64];
    size_t k = 0;
    int n_images = 0;
    struct bw_err err = {0};
    for (; k < n; k++) {
        norm[k] = chat_message_normalize(json_array_get(arr, k), k, &n_images, &err);
        if (!norm[k])
            break;
        memset(&msgs[k], 0, sizeof msgs[k]);
        msgs[k].role = json_string_value(json_object_get(norm[k], "role"));
        msgs[k].content = json_string_value(json_object_get(norm[k], "content"));
        if (!msgs[k].role)
            msgs[k].role = "user";
        if (!msgs[k].content)
            msgs[k].content = "";
    }
    if (k == n) {
        struct chat_render_in in = {.msgs = msgs,
                                    .n_msgs = n,
                                    .parsed = norm,
                                    .think = think,
                                    .add_generation_prompt = true,
                                    .bos_token = "<s>",
                                    .eos_token = "</s>",
                                    .now_unix = 1700000000};
        char *out = NULL;
        size_t out_len = 0;
        if (chat_template_render(t, &in, &out, &out_len, &err) == BW_OK)
            FUZZ_CHECK(out && out[out_len] == '\0');
        free(out);
    }
    for (size_t i = 0; i < k; i++)
        json_decref(norm[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load();
    if (size > 1 << 16)
        return 0;
    unsigned pick = fuzz_take_byte(&data, &size);
    size_t i = pick % n_tmpls;
    static const char *const thinks[] = {NULL, "true", "false", "high"};
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    if (json_is_array(doc)) {
        render_messages(tmpls[i], doc, thinks[(pick / MAX_TEMPLATES) % 4]);
    } else if (json_is_object(doc)) {
        struct jinja_opts o = {.now_unix = 1700000000,
                               .max_output = 1 << 20,
                               .max_memory = 16 << 20,
                               .max_steps = 200000,
                               .max_depth = 64};
        char *out = NULL;
        size_t out_len = 0;
        struct bw_err err = {0};
        if (jinja_render(raw[i], doc, &o, &out, &out_len, &err) == BW_OK)
            FUZZ_CHECK(out && out[out_len] == '\0');
        free(out);
    }
    json_decref(doc);
    return 0;
}
