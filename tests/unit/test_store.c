/* test_store.c -- src/store: sha256, model names and digests, and the store on disk
 * (create, resolve, list, copy, delete with pruning, blobs, an Ollama-made tree). Each
 * store test runs in its own mkdtemp directory, removed afterwards. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ggml.h"
#include "store/names.h"
#include "store/sha256.h"
#include "store/store.h"
#include "util/log.h"

#define DEMO BELLOWS_TEST_MODELS "/demo.gguf"

/* ---- helpers --------------------------------------------------------------------------- */

struct fixture {
    char dir[64];   /* the temp dir */
    char root[128]; /* dir/models: the store */
    struct store *st;
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/bellows-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->root, sizeof f->root, "%s/models", f->dir);
    struct bw_err err;
    if (store_open(f->root, &f->st, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    int rc = nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

static void hex_of_file(const char *path, char hex[65])
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    struct sha256 s;
    uint8_t buf[65536], d[SHA256_LEN];
    size_t n;
    sha256_init(&s);
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        sha256_update(&s, buf, n);
    fclose(fp);
    sha256_final(&s, d);
    sha256_hex(d, hex);
}

static char *read_text(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void write_text(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

/* Number of entries in DIR, hidden ones included (temp files count). -1 if absent. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static int count_blobs(struct fixture *f)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/blobs", f->root);
    return count_entries(dir);
}

static bool blob_exists_hex(struct fixture *f, const char *hex)
{
    char d[80];
    snprintf(d, sizeof d, "sha256:%s", hex);
    return store_blob_exists(f->st, d);
}

static void create_from_demo(struct fixture *f, const char *name, const char *system)
{
    struct store_create req = {.from_path = DEMO, .system = system};
    struct bw_err err = {0};
    int rc = store_create(f->st, name, &req, &err);
    if (rc)
        fail_msg("create %s: %s", name, err.msg);
}

/* The blob of a model's system layer, found through its text. */
static void system_blob_hex(const char *text, char hex[65])
{
    sha256_hex_of(text, strlen(text), hex);
}

/* ---- sha256 ---------------------------------------------------------------------------- */

static void sha256_standard_vectors(void **state)
{
    (void)state;
    char hex[65];
    sha256_hex_of("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex_of("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *v448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex_of(v448, strlen(v448), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* A million 'a's, fed in uneven pieces so every buffering path runs. */
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    struct sha256 s;
    uint8_t d[SHA256_LEN];
    sha256_init(&s);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t n = step < left ? step : left;
        sha256_update(&s, chunk, n);
        left -= n;
        step = step * 7 % 997 + 1;
    }
    sha256_final(&s, d);
    sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void sha256_split_points_do_not_matter(void **state)
{
    (void)state;
    uint8_t data[200];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 31 + 7);
    for (size_t len = 0; len <= sizeof data; len += 13) {
        char whole[65], parts[65];
        sha256_hex_of(data, len, whole);
        for (size_t cut = 0; cut <= len; cut += 5) {
            struct sha256 s;
            uint8_t d[SHA256_LEN];
            sha256_init(&s);
            sha256_update(&s, data, cut);
            sha256_update(&s, data + cut, len - cut);
            sha256_final(&s, d);
            sha256_hex(d, parts);
            assert_string_equal(whole, parts);
        }
    }
}

/* ---- names ----------------------------------------------------------------------------- */

static void expect_name(const char *in, const char *full, const char *display)
{
    struct names_ref r;
    struct bw_err err = {0};
    if (names_parse(in, &r, &err))
        fail_msg("'%s' rejected: %s", in, err.msg);
    char buf[NAMES_FULL_MAX + 1];
    names_full(&r, buf);
    assert_string_equal(buf, full);
    names_display(&r, buf);
    assert_string_equal(buf, display);
}

static void names_valid_get_ollama_defaults(void **state)
{
    (void)state;
    expect_name("demo", "registry.ollama.ai/library/demo:latest", "demo:latest");
    expect_name("demo:latest", "registry.ollama.ai/library/demo:latest", "demo:latest");
    expect_name("qwen2.5:0.5b", "registry.ollama.ai/library/qwen2.5:0.5b", "qwen2.5:0.5b");
    expect_name("me/demo:v1", "registry.ollama.ai/me/demo:v1", "me/demo:v1");
    expect_name("library/demo", "registry.ollama.ai/library/demo:latest", "demo:latest");
    expect_name("registry.ollama.ai/library/demo:latest", "registry.ollama.ai/library/demo:latest", "demo:latest");
    expect_name("Registry.Ollama.AI/Library/Demo:Q4", "Registry.Ollama.AI/Library/Demo:Q4", "Demo:Q4");
    expect_name("example.com:5000/me/demo:1.0", "example.com:5000/me/demo:1.0", "example.com:5000/me/demo:1.0");
    expect_name("hf.co/me/demo", "hf.co/me/demo:latest", "hf.co/me/demo:latest");
    expect_name("_x/a_b-c.d:t_1.2-3", "registry.ollama.ai/_x/a_b-c.d:t_1.2-3", "_x/a_b-c.d:t_1.2-3");

    char model[81], long_name[100];
    memset(model, 'm', 80);
    model[80] = '\0';
    snprintf(long_name, sizeof long_name, "%s:t", model);
    struct names_ref r;
    assert_int_equal(names_parse(long_name, &r, NULL), BW_OK); /* 80 is the limit, inclusive */
    char rel[NAMES_FULL_MAX + 1];
    names_parse("me/demo:v1", &r, NULL);
    names_relpath(&r, rel);
    assert_string_equal(rel, "registry.ollama.ai/me/demo/v1");
}

static void names_invalid_are_rejected(void **state)
{
    (void)state;
    char m81[82], t81[90], h351[400];
    memset(m81, 'm', 81);
    m81[81] = '\0';
    snprintf(t81, sizeof t81, "m:%s", m81);
    memset(h351, 'h', 351);
    snprintf(h351 + 351, sizeof h351 - 351, "/ns/m");
    const char *bad[] = {
        "", "..", "../x", "a/../b", "../../etc/passwd", "/abs", "/etc/passwd", "a//b", "a/", "/",
        "a:", ":tag", "a\\b", "..\\x", "ns.dot/model", "a/b/c/d", "model@sha256:abc", "mo del",
        "x:ta/g", ".hidden", "-dash", "a:b:c", "https://host/ns/m", "a\nb", "%2e%2e", "m:.", "m:..",
        "host/./m", "h/ns/..", "m:t\\x", "m\t", m81, t81, h351, "ns/-m", "m:-t",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct names_ref r;
        struct bw_err err = {0};
        if (names_parse(bad[i], &r, &err) != BW_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(err.code, BW_EINVAL);
        assert_non_null(strstr(err.msg, "invalid model name"));
    }
    struct names_ref r;
    assert_int_equal(names_parse(NULL, &r, NULL), BW_EINVAL);
    assert_int_equal(names_from_parts("registry.ollama.ai", "library", "..", "latest", &r, NULL), BW_EINVAL);
    assert_int_equal(names_from_parts("registry.ollama.ai", "library", "m", "a/b", &r, NULL), BW_EINVAL);
}

static void digests_are_validated(void **state)
{
    (void)state;
    const char *hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    char d[128], out[65];
    snprintf(d, sizeof d, "sha256:%s", hex);
    assert_int_equal(names_digest_parse(d, out, NULL), BW_OK);
    assert_string_equal(out, hex);
    snprintf(d, sizeof d, "sha256-%s", hex);
    assert_true(names_digest_valid(d));
    snprintf(d, sizeof d, "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
    assert_int_equal(names_digest_parse(d, out, NULL), BW_OK);
    assert_string_equal(out, hex); /* normalised to lowercase */

    const char *bad[] = {
        "", "sha256:", "sha256:e3b0", "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",   /* 63 */
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", /* 65 */
        "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:../../../../../../../../../../../../../../../../../../../etc/pas",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct bw_err err = {0};
        if (names_digest_parse(bad[i], out, &err) != BW_EINVAL)
            fail_msg("digest '%s' was accepted", bad[i]);
        assert_non_null(strstr(err.msg, "invalid digest"));
    }
    assert_false(names_digest_valid(NULL));
}

/* ---- the store ------------------------------------------------------------------------- */

struct progress_log {
    int n_calls, n_copy;
    uint64_t last_done, last_total;
    bool increasing, parsed, wrote_manifest, created_layer;
};

static void on_progress(void *ud, const char *status, uint64_t done, uint64_t total)
{
    struct progress_log *p = ud;
    p->n_calls++;
    if (!strcmp(status, "copying model")) {
        if (p->n_copy && done <= p->last_done)
            p->increasing = false;
        assert_true(done <= total);
        p->n_copy++;
        p->last_done = done;
        p->last_total = total;
    }
    p->parsed |= !strcmp(status, "parsing GGUF");
    p->wrote_manifest |= !strcmp(status, "writing manifest");
    p->created_layer |= !strncmp(status, "creating new layer sha256:", 26);
}

static void create_then_resolve_and_list(void **state)
{
    struct fixture *f = *state;
    struct progress_log prog = {.increasing = true};
    struct store_create req = {
        .from_path = DEMO,
        .params = "{ \"temperature\": 0.5, \"stop\": [\"<|im_end|>\"] }",
        .system = "You are terse.",
        .template = "{{ .Prompt }}",
        .license = "MIT",
        .messages = "[{\"role\":\"user\",\"content\":\"hi\"}]",
        .progress = on_progress,
        .progress_ud = &prog,
    };
    struct bw_err err = {0};
    assert_int_equal(store_create(f->st, "demo", &req, &err), BW_OK);

    /* Progress: parse, bytes rising every few MB up to the file size, layers, manifest. */
    struct stat sb;
    assert_int_equal(stat(DEMO, &sb), 0);
    assert_true(prog.parsed && prog.wrote_manifest && prog.created_layer && prog.increasing);
    assert_true(prog.n_copy >= (int)(sb.st_size / (8 << 20)));
    assert_int_equal(prog.last_done, (uint64_t)sb.st_size);
    assert_int_equal(prog.last_total, (uint64_t)sb.st_size);

    struct store_model *m = NULL;
    assert_int_equal(store_resolve(f->st, "demo:latest", &m, &err), BW_OK);
    assert_string_equal(m->name, "registry.ollama.ai/library/demo:latest");
    assert_string_equal(m->display, "demo:latest");
    char demo_hex[65];
    hex_of_file(DEMO, demo_hex);
    assert_string_equal(m->model_digest, demo_hex);
    assert_int_equal(m->model_size, (uint64_t)sb.st_size);
    char want_path[512];
    snprintf(want_path, sizeof want_path, "%s/blobs/sha256-%s", store_root(f->st), demo_hex);
    assert_string_equal(m->model_path, want_path);
    char copy_hex[65];
    hex_of_file(m->model_path, copy_hex);
    assert_string_equal(copy_hex, demo_hex);
    assert_string_equal(m->params, "{\"stop\":[\"<|im_end|>\"],\"temperature\":0.5}");
    assert_string_equal(m->system, "You are terse.");
    assert_string_equal(m->template, "{{ .Prompt }}");
    assert_string_equal(m->license, "MIT");
    assert_string_equal(m->messages, "[{\"content\":\"hi\",\"role\":\"user\"}]");
    assert_string_equal(m->details.format, "gguf");
    assert_string_equal(m->details.family, "qwen2");
    assert_string_equal(m->details.quantization_level, "Q8_0");
    assert_non_null(m->details.parameter_size);
    assert_true(m->modified_ns > 0);

    /* The manifest's digest is the sha256 of its bytes, and it is Ollama's shape. */
    char mpath[512], mhex[65];
    snprintf(mpath, sizeof mpath, "%s/manifests/registry.ollama.ai/library/demo/latest", f->root);
    hex_of_file(mpath, mhex);
    assert_string_equal(m->digest, mhex);
    char *text = read_text(mpath);
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "schemaVersion")), 2);
    assert_string_equal(json_string_value(json_object_get(j, "mediaType")), STORE_MEDIA_MANIFEST);
    json_t *config = json_object_get(j, "config");
    assert_string_equal(json_string_value(json_object_get(config, "mediaType")), STORE_MEDIA_CONFIG);
    json_t *layers = json_object_get(j, "layers");
    assert_int_equal(json_array_size(layers), 6);
    json_t *l0 = json_array_get(layers, 0);
    assert_string_equal(json_string_value(json_object_get(l0, "mediaType")), STORE_MEDIA_MODEL);
    char want_digest[80];
    snprintf(want_digest, sizeof want_digest, "sha256:%s", demo_hex);
    assert_string_equal(json_string_value(json_object_get(l0, "digest")), want_digest);
    uint64_t total = (uint64_t)json_integer_value(json_object_get(config, "size"));
    for (size_t i = 0; i < json_array_size(layers); i++)
        total += (uint64_t)json_integer_value(json_object_get(json_array_get(layers, i), "size"));
    json_decref(j);
    free(text);
    assert_int_equal(m->size, total);

    struct store_list l;
    assert_int_equal(store_list(f->st, &l, &err), BW_OK);
    assert_int_equal(l.n_items, 1);
    assert_string_equal(l.items[0].display, "demo:latest");
    assert_string_equal(l.items[0].name, m->name);
    assert_string_equal(l.items[0].digest, m->digest);
    assert_int_equal(l.items[0].size, total);
    assert_int_equal(l.items[0].modified_ns, m->modified_ns);
    assert_string_equal(l.items[0].details.family, "qwen2");
    store_list_fini(&l);
    store_model_free(m);

    /* 6 layers + config, nothing else (no temp files). */
    assert_int_equal(count_blobs(f), 7);
}

static void resolve_unknown_is_not_found(void **state)
{
    struct fixture *f = *state;
    struct store_model *m = NULL;
    struct bw_err err = {0};
    assert_int_equal(store_resolve(f->st, "nope", &m, &err), BW_ENOTFOUND);
    assert_string_equal(err.msg, "model 'nope' not found");
    assert_null(m);
    assert_int_equal(store_resolve(f->st, "../../etc/passwd", &m, &err), BW_EINVAL);
    assert_int_equal(store_delete(f->st, "nope", &err), BW_ENOTFOUND);
    assert_int_equal(store_copy(f->st, "nope", "other", &err), BW_ENOTFOUND);
    struct store_list l;
    assert_int_equal(store_list(f->st, &l, &err), BW_OK);
    assert_int_equal(l.n_items, 0);
    store_list_fini(&l);

    /* A corrupt manifest: resolving it is an I/O error, listing skips it, deleting works. */
    char path[512];
    snprintf(path, sizeof path, "%s/manifests/registry.ollama.ai", f->root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/manifests/registry.ollama.ai/library", f->root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/manifests/registry.ollama.ai/library/broken", f->root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/manifests/registry.ollama.ai/library/broken/latest", f->root);
    write_text(path, "not json", 8);
    assert_int_equal(store_resolve(f->st, "broken", &m, &err), BW_EIO);
    assert_non_null(strstr(err.msg, "corrupt manifest"));
    assert_int_equal(store_list(f->st, &l, &err), BW_OK);
    assert_int_equal(l.n_items, 0);
    store_list_fini(&l);
    assert_int_equal(store_delete(f->st, "broken", &err), BW_OK);
    assert_int_equal(store_resolve(f->st, "broken", &m, &err), BW_ENOTFOUND);
    snprintf(path, sizeof path, "%s/manifests", f->root);
    assert_int_equal(count_entries(path), 0);
}

static void copy_and_delete_prune_only_unshared_blobs(void **state)
{
    struct fixture *f = *state;
    struct bw_err err = {0};
    create_from_demo(f, "a", "A");
    assert_int_equal(store_copy(f->st, "a", "me/b:v2", &err), BW_OK);

    struct store_model *a, *b;
    assert_int_equal(store_resolve(f->st, "a", &a, &err), BW_OK);
    assert_int_equal(store_resolve(f->st, "me/b:v2", &b, &err), BW_OK);
    assert_string_equal(a->digest, b->digest); /* byte-identical manifests */
    assert_string_equal(b->display, "me/b:v2");
    assert_string_equal(b->system, "A");

    /* c shares only the weights, through the blob digest (as after /api/blobs). */
    char digest[80];
    snprintf(digest, sizeof digest, "sha256:%s", a->model_digest);
    struct store_create req = {.from_digest = digest, .system = "C"};
    assert_int_equal(store_create(f->st, "c", &req, &err), BW_OK);

    char sys_a[65], model_hex[65];
    system_blob_hex("A", sys_a);
    memcpy(model_hex, a->model_digest, sizeof model_hex);
    store_model_free(a);
    store_model_free(b);

    assert_int_equal(store_delete(f->st, "a", &err), BW_OK);
    assert_int_equal(store_resolve(f->st, "a", &a, &err), BW_ENOTFOUND);
    assert_int_equal(store_resolve(f->st, "me/b:v2", &b, &err), BW_OK); /* shared blobs survive */
    store_model_free(b);
    assert_true(blob_exists_hex(f, sys_a));

    assert_int_equal(store_delete(f->st, "me/b:v2", &err), BW_OK);
    assert_false(blob_exists_hex(f, sys_a));   /* nobody names "A" any more */
    assert_true(blob_exists_hex(f, model_hex)); /* c still uses the weights */
    char dir[256];
    snprintf(dir, sizeof dir, "%s/manifests/registry.ollama.ai/me", f->root);
    assert_int_equal(count_entries(dir), -1); /* empty manifest dirs are gone */

    assert_int_equal(store_delete(f->st, "c", &err), BW_OK);
    assert_int_equal(count_blobs(f), 0);
    snprintf(dir, sizeof dir, "%s/manifests", f->root);
    assert_int_equal(count_entries(dir), 0);
}

static void overwrite_prunes_the_old_layers(void **state)
{
    struct fixture *f = *state;
    char one[65], two[65];
    system_blob_hex("one", one);
    system_blob_hex("two", two);
    create_from_demo(f, "x", "one");
    assert_true(blob_exists_hex(f, one));
    create_from_demo(f, "x", "two");
    assert_false(blob_exists_hex(f, one));
    assert_true(blob_exists_hex(f, two));
    assert_int_equal(count_blobs(f), 3); /* weights, system, config */
}

static void create_from_model_inherits_and_merges(void **state)
{
    struct fixture *f = *state;
    struct bw_err err = {0};
    struct store_create req = {.from_path = DEMO, .system = "S", .params = "{\"temperature\":0.1,\"top_k\":5}"};
    assert_int_equal(store_create(f->st, "base", &req, &err), BW_OK);
    struct store_create child = {.from_model = "base", .params = "{\"temperature\":0.9}", .template = "T"};
    assert_int_equal(store_create(f->st, "child", &child, &err), BW_OK);

    struct store_model *b, *c;
    assert_int_equal(store_resolve(f->st, "base", &b, &err), BW_OK);
    assert_int_equal(store_resolve(f->st, "child", &c, &err), BW_OK);
    assert_string_equal(c->model_digest, b->model_digest);
    assert_string_equal(c->system, "S");
    assert_string_equal(c->template, "T");
    assert_null(b->template);
    assert_string_equal(c->params, "{\"temperature\":0.9,\"top_k\":5}");
    assert_string_equal(b->params, "{\"temperature\":0.1,\"top_k\":5}");
    store_model_free(b);
    store_model_free(c);

    /* Numbers keep their short form unless that would change their value. */
    struct store_create exact = {.from_model = "base", .params = "{\"temperature\":0.30000000000000004}"};
    assert_int_equal(store_create(f->st, "exact", &exact, &err), BW_OK);
    assert_int_equal(store_resolve(f->st, "exact", &c, &err), BW_OK);
    assert_string_equal(c->params, "{\"temperature\":0.30000000000000004,\"top_k\":5}");
    store_model_free(c);
}

static void blob_put_checks_the_digest(void **state)
{
    struct fixture *f = *state;
    struct bw_err err = {0};
    char path[256], hello[65], world[65], d[80];
    snprintf(path, sizeof path, "%s/upload", f->dir);
    write_text(path, "hello", 5);
    sha256_hex_of("hello", 5, hello);
    sha256_hex_of("world", 5, world);

    snprintf(d, sizeof d, "sha256:%s", world);
    assert_int_equal(store_blob_put_file(f->st, path, d, NULL, NULL, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "digest mismatch"));
    assert_int_equal(count_blobs(f), 0); /* no partial or temp file */
    assert_false(store_blob_exists(f->st, d));

    /* The chunked writer, as the HTTP layer drives it. */
    struct store_blob_writer *w;
    assert_int_equal(store_blob_begin(f->st, d, 5, NULL, NULL, &w, &err), BW_OK);
    assert_int_equal(store_blob_write(w, "hel", 3, &err), BW_OK);
    assert_int_equal(store_blob_write(w, "lo", 2, &err), BW_OK);
    assert_int_equal(store_blob_commit(w, NULL, &err), BW_EINVAL);
    assert_int_equal(count_blobs(f), 0);
    assert_int_equal(store_blob_begin(f->st, d, 0, NULL, NULL, &w, &err), BW_OK);
    store_blob_abort(w);
    assert_int_equal(count_blobs(f), 0);

    snprintf(d, sizeof d, "sha256-%s", hello);
    assert_int_equal(store_blob_put_file(f->st, path, d, NULL, NULL, &err), BW_OK);
    assert_true(store_blob_exists(f->st, d));
    assert_int_equal(count_blobs(f), 1);
    char blob[512];
    assert_int_equal(store_blob_path(f->st, d, blob, sizeof blob, &err), BW_OK);
    char *text = read_text(blob);
    assert_string_equal(text, "hello");
    free(text);

    assert_int_equal(store_blob_begin(f->st, NULL, 0, NULL, NULL, &w, &err), BW_OK);
    assert_int_equal(store_blob_write(w, "world", 5, &err), BW_OK);
    char got[65];
    assert_int_equal(store_blob_commit(w, got, &err), BW_OK);
    assert_string_equal(got, world);

    assert_int_equal(store_blob_put_file(f->st, path, "sha256:../../x", NULL, NULL, &err), BW_EINVAL);
    assert_false(store_blob_exists(f->st, "sha256:../../x"));
    assert_int_equal(store_blob_put_file(f->st, path, NULL, NULL, NULL, &err), BW_EINVAL);
    assert_int_equal(count_blobs(f), 2);
}

/* A blob upload that announces its size is refused up front when the disk cannot hold it. */
static void blob_room_checks_the_free_space(void **state)
{
    struct fixture *f = *state;
    struct bw_err err = {0};
    assert_int_equal(store_blob_room(f->st, 0, &err), BW_OK);
    assert_int_equal(store_blob_room(f->st, 4096, &err), BW_OK);
    assert_int_equal(store_blob_room(f->st, UINT64_MAX, &err), BW_ENOSPC);
    assert_non_null(strstr(err.msg, "not enough disk space: the blob is 18446744073709551615 bytes"));
    assert_non_null(strstr(err.msg, "are free in "));
    assert_int_equal(count_blobs(f), 0);
}

static void create_rejects_a_corrupt_gguf_and_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct bw_err err = {0};
    char path[256];

    /* Random bytes, a truncated demo model, an empty file. */
    uint8_t junk[8192];
    uint32_t x = 99;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        junk[i] = (uint8_t)x;
    }
    snprintf(path, sizeof path, "%s/junk.gguf", f->dir);
    write_text(path, junk, sizeof junk);
    struct store_create req = {.from_path = path, .system = "S"};
    assert_int_equal(store_create(f->st, "bad", &req, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "is not a GGUF file"));

    char *demo = read_text(DEMO);
    struct stat sb;
    stat(DEMO, &sb);
    write_text(path, demo, (size_t)sb.st_size / 2);
    assert_int_equal(store_create(f->st, "bad", &req, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "is not a GGUF file"));
    write_text(path, demo, 0);
    assert_int_equal(store_create(f->st, "bad", &req, &err), BW_EINVAL);
    free(demo);

    /* An uploaded blob that is not a GGUF. */
    char hex[65], d[80];
    sha256_hex_of(junk, sizeof junk, hex);
    snprintf(d, sizeof d, "sha256:%s", hex);
    write_text(path, junk, sizeof junk);
    assert_int_equal(store_blob_put_file(f->st, path, d, NULL, NULL, &err), BW_OK);
    struct store_create by_digest = {.from_digest = d};
    assert_int_equal(store_create(f->st, "bad", &by_digest, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "is not a GGUF file"));
    assert_int_equal(count_blobs(f), 1); /* only the upload itself */

    char dir[256];
    snprintf(dir, sizeof dir, "%s/manifests", f->root);
    assert_int_equal(count_entries(dir), 0);
    struct store_model *m = NULL;
    assert_int_equal(store_resolve(f->st, "bad", &m, &err), BW_ENOTFOUND);
}

static void create_rejects_bad_names_json_and_sources(void **state)
{
    struct fixture *f = *state;
    struct bw_err err = {0};
    struct store_create ok = {.from_path = DEMO};
    assert_int_equal(store_create(f->st, "../escape", &ok, &err), BW_EINVAL);
    assert_int_equal(store_create(f->st, "/tmp/x", &ok, &err), BW_EINVAL);

    struct store_create bad_json = {.from_path = DEMO, .params = "{\"temperature\": 0.5,"};
    assert_int_equal(store_create(f->st, "m", &bad_json, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "line 1"));
    struct store_create not_object = {.from_path = DEMO, .params = "[1]"};
    assert_int_equal(store_create(f->st, "m", &not_object, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "must be a JSON object"));
    struct store_create not_array = {.from_path = DEMO, .messages = "{}"};
    assert_int_equal(store_create(f->st, "m", &not_array, &err), BW_EINVAL);

    struct store_create none = {0};
    assert_int_equal(store_create(f->st, "m", &none, &err), BW_EINVAL);
    struct store_create two = {.from_path = DEMO, .from_model = "x"};
    assert_int_equal(store_create(f->st, "m", &two, &err), BW_EINVAL);
    struct store_create missing = {.from_path = "/nonexistent/model.gguf"};
    assert_int_equal(store_create(f->st, "m", &missing, &err), BW_ENOTFOUND);
    struct store_create no_base = {.from_model = "nobody"};
    assert_int_equal(store_create(f->st, "m", &no_base, &err), BW_ENOTFOUND);
    struct store_create no_blob = {.from_digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"};
    assert_int_equal(store_create(f->st, "m", &no_blob, &err), BW_ENOTFOUND);

    /* A stated digest that the file does not have. */
    struct store_create wrong = {.from_path = DEMO,
                                 .expected_digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"};
    assert_int_equal(store_create(f->st, "m", &wrong, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "digest mismatch"));
    assert_int_equal(count_blobs(f), 0);
}

/* Write a blob by hand, Ollama-style; returns its hex. */
static void put_raw_blob(struct fixture *f, const char *data, char hex[65])
{
    char path[512];
    sha256_hex_of(data, strlen(data), hex);
    snprintf(path, sizeof path, "%s/blobs/sha256-%s", f->root, hex);
    write_text(path, data, strlen(data));
}

static void write_manifest(struct fixture *f, const char *rel, const char *config_hex, size_t config_size,
                           const char *model_hex, uint64_t model_size, const char *tmpl_hex, size_t tmpl_size)
{
    char path[512], text[2048];
    snprintf(path, sizeof path, "%s/manifests/%s", f->root, rel);
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + strlen(f->root) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0755);
            *p = '/';
        }
    int n = snprintf(text, sizeof text,
                     "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
                     "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
                     "\"digest\":\"sha256:%s\",\"size\":%zu},\"layers\":["
                     "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\",\"size\":%llu}",
                     config_hex, config_size, model_hex, (unsigned long long)model_size);
    if (tmpl_hex)
        n += snprintf(text + n, sizeof text - (size_t)n,
                      ",{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"sha256:%s\",\"size\":%zu}",
                      tmpl_hex, tmpl_size);
    snprintf(text + n, sizeof text - (size_t)n, "]}\n");
    write_text(path, text, strlen(text));
}

static void an_ollama_tree_is_listed_and_resolved(void **state)
{
    struct fixture *f = *state;
    struct bw_err err = {0};
    /* Weights: the demo model, uploaded the way `ollama create` does. */
    char demo_hex[65], d[80];
    hex_of_file(DEMO, demo_hex);
    snprintf(d, sizeof d, "sha256:%s", demo_hex);
    assert_int_equal(store_blob_put_file(f->st, DEMO, d, NULL, NULL, &err), BW_OK);
    struct stat sb;
    stat(DEMO, &sb);

    const char *config = "{\"model_format\":\"gguf\",\"model_family\":\"qwen2\",\"model_families\":[\"qwen2\"],"
                         "\"model_type\":\"494.03M\",\"file_type\":\"Q4_K_M\",\"architecture\":\"amd64\",\"os\":\"linux\","
                         "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
    const char *tmpl = "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>{{ end }}";
    char config_hex[65], tmpl_hex[65];
    put_raw_blob(f, config, config_hex);
    put_raw_blob(f, tmpl, tmpl_hex);
    write_manifest(f, "registry.ollama.ai/library/qwen2.5/0.5b", config_hex, strlen(config), demo_hex,
                   (uint64_t)sb.st_size, tmpl_hex, strlen(tmpl));
    write_manifest(f, "example.com/me/tiny/latest", config_hex, strlen(config), demo_hex, (uint64_t)sb.st_size,
                   NULL, 0);
    /* Debris a real store may hold: a download in progress, a stray file, a bad name. */
    char junk[512];
    snprintf(junk, sizeof junk, "%s/blobs/sha256-%s-partial", f->root, demo_hex);
    write_text(junk, "x", 1);
    snprintf(junk, sizeof junk, "%s/manifests/registry.ollama.ai/library/qwen2.5/.tmp-abc", f->root);
    write_text(junk, "{", 1);
    snprintf(junk, sizeof junk, "%s/manifests/registry.ollama.ai/library/-bad", f->root);
    mkdir(junk, 0755);
    snprintf(junk, sizeof junk, "%s/manifests/registry.ollama.ai/library/-bad/latest", f->root);
    write_text(junk, "{}", 2);

    struct store_list l;
    assert_int_equal(store_list(f->st, &l, &err), BW_OK);
    assert_int_equal(l.n_items, 2);
    bool seen_qwen = false, seen_tiny = false;
    for (size_t i = 0; i < l.n_items; i++) {
        if (!strcmp(l.items[i].display, "qwen2.5:0.5b")) {
            seen_qwen = true;
            assert_int_equal(l.items[i].size, strlen(config) + (uint64_t)sb.st_size + strlen(tmpl));
            assert_string_equal(l.items[i].details.parameter_size, "494.03M");
            assert_string_equal(l.items[i].details.quantization_level, "Q4_K_M");
        }
        seen_tiny |= !strcmp(l.items[i].display, "example.com/me/tiny:latest");
    }
    assert_true(seen_qwen && seen_tiny);
    store_list_fini(&l);

    struct store_model *m;
    assert_int_equal(store_resolve(f->st, "qwen2.5:0.5b", &m, &err), BW_OK);
    assert_string_equal(m->template, tmpl);
    assert_null(m->system);
    assert_null(m->params);
    assert_string_equal(m->model_digest, demo_hex);
    store_model_free(m);
    /* Names match ignoring case, and report the spelling on disk. */
    assert_int_equal(store_resolve(f->st, "Qwen2.5:0.5B", &m, &err), BW_OK);
    assert_string_equal(m->display, "qwen2.5:0.5b");
    store_model_free(m);
    assert_int_equal(store_resolve(f->st, "example.com/me/tiny", &m, &err), BW_OK);
    store_model_free(m);

    /* "-bad" is not a valid name, so it is not listed; its manifest cannot be parsed, so
     * while it exists nothing is pruned (it might name any blob). */
    assert_int_equal(store_delete(f->st, "example.com/me/tiny", &err), BW_OK);
    assert_true(blob_exists_hex(f, config_hex));
    assert_int_equal(store_delete(f->st, "qwen2.5:0.5b", &err), BW_OK);
    assert_true(blob_exists_hex(f, demo_hex)); /* "-bad/latest" is corrupt: pruning held back */
    unlink(junk);
    create_from_demo(f, "again", NULL);
    assert_int_equal(store_delete(f->st, "again", &err), BW_OK);
    assert_false(blob_exists_hex(f, demo_hex));
    assert_int_equal(count_blobs(f), 3); /* the partial download, the config, the template */
}

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)level, (void)text, (void)ud;
}

int main(void)
{
    ggml_log_set(quiet, NULL); /* gguf logs every rejected file; the asserts say enough */
    log_set_level(LOG_ERROR);  /* the store's info and warning lines, likewise */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_standard_vectors),
        cmocka_unit_test(sha256_split_points_do_not_matter),
        cmocka_unit_test(names_valid_get_ollama_defaults),
        cmocka_unit_test(names_invalid_are_rejected),
        cmocka_unit_test(digests_are_validated),
        cmocka_unit_test_setup_teardown(create_then_resolve_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(resolve_unknown_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(copy_and_delete_prune_only_unshared_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(overwrite_prunes_the_old_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(create_from_model_inherits_and_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(blob_put_checks_the_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(blob_room_checks_the_free_space, setup, teardown),
        cmocka_unit_test_setup_teardown(create_rejects_a_corrupt_gguf_and_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(create_rejects_bad_names_json_and_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(an_ollama_tree_is_listed_and_resolved, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
