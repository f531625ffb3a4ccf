/* fuzz_names.c -- model names and digests (src/store/names.c) and the names a pull reads
 * (src/registry/names.c).
 *
 * The input is one name. A name names_parse accepts must stay inside the store: its
 * relative path has no "..", no empty part, no leading '/'; its full and display forms
 * parse again to the same four parts. A digest that parses is 64 lowercase hex digits. */
#include "fuzz.h"
#include "registry/registry.h"
#include "store/names.h"

static void check_same(const struct names_ref *a, const struct names_ref *b)
{
    FUZZ_CHECK(!strcmp(a->host, b->host) && !strcmp(a->ns, b->ns) && !strcmp(a->model, b->model) &&
               !strcmp(a->tag, b->tag));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = fuzz_strndup(data, size);
    if (!s)
        return 0;
    struct bw_err err = {0};
    struct names_ref n;
    if (names_parse(s, &n, &err) == BW_OK) {
        char rel[NAMES_FULL_MAX + 1], full[NAMES_FULL_MAX + 1], disp[NAMES_FULL_MAX + 1];
        names_relpath(&n, rel);
        names_full(&n, full);
        names_display(&n, disp);
        FUZZ_CHECK(rel[0] && rel[0] != '/' && !strstr(rel, "//") && !strstr(rel, "\\"));
        /* four levels, none empty, none "." or ".." or hidden */
        int levels = 0;
        for (const char *p = rel; p; levels++) {
            FUZZ_CHECK(*p && *p != '/' && *p != '.');
            p = strchr(p, '/');
            if (p)
                p++;
        }
        FUZZ_CHECK(levels == 4);
        struct names_ref again;
        FUZZ_CHECK(names_parse(full, &again, &err) == BW_OK);
        check_same(&n, &again);
        FUZZ_CHECK(names_parse(disp, &again, &err) == BW_OK);
        /* display drops default parts, compared case-insensitively: same model and tag */
        FUZZ_CHECK(!strcmp(again.model, n.model) && !strcmp(again.tag, n.tag));
        struct names_ref parts;
        FUZZ_CHECK(names_from_parts(n.host, n.ns, n.model, n.tag, &parts, &err) == BW_OK);
        check_same(&n, &parts);
    }

    char hex[NAMES_HEX_LEN + 1];
    bool valid = names_digest_valid(s);
    if (names_digest_parse(s, hex, &err) == BW_OK) {
        FUZZ_CHECK(valid);
        FUZZ_CHECK(strlen(hex) == NAMES_HEX_LEN);
        for (size_t i = 0; i < NAMES_HEX_LEN; i++)
            FUZZ_CHECK((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
    } else {
        FUZZ_CHECK(!valid);
    }

    for (int insecure = 0; insecure < 2; insecure++) {
        struct registry_ref r;
        if (registry_ref_parse(s, insecure, &r, &err) == BW_OK) {
            char url[4096];
            registry_manifest_url(&r, url);
            FUZZ_CHECK(!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8));
            registry_blob_url(&r, "sha256:0000000000000000000000000000000000000000000000000000000000000000", url);
        }
    }
    free(s);
    return 0;
}
