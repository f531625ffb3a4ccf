/* test_kvdisk.c -- unit tests for src/kvcache/kvdisk.c (issue 15): saved states found by the
 * longest common prefix of a prompt, exact to the token; a torn, corrupt or foreign file is
 * never loaded and is removed; the budget holds in bytes with the least recently used out
 * first; files are 0600; clear and remove-by-model. Each test works in its own temporary
 * directory. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvcache/kvdisk.h"

struct fixture {
    char dir[256];
    struct kvdisk *kv;
};

static struct kvdisk *open_kv(const char *dir, uint64_t budget, const char *model, const char *setup)
{
    struct kvdisk_config c = {.dir = dir, .budget_bytes = budget, .model_key = model, .setup_key = setup};
    struct kvdisk *kv;
    struct bw_err err;
    assert_int_equal(kvdisk_open(&c, &kv, &err), BW_OK);
    return kv;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/bellows-kvdisk-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    strcat(f->dir, "/kv"); /* kvdisk_open creates it */
    f->kv = open_kv(f->dir, 1 << 20, "sha256:aaaa", "sha256:aaaa f16");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    kvdisk_close(f->kv);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%.*s'", (int)(strlen(f->dir) - 3), f->dir);
    (void)!system(cmd);
    free(f);
    return 0;
}

/* tokens 0..n-1 shifted by base; a state of len bytes whose content is derived from seed. */
static int32_t *tokens_of(int n, int base)
{
    int32_t *t = malloc((size_t)n * sizeof *t);
    for (int i = 0; i < n; i++)
        t[i] = base + i;
    return t;
}

static unsigned char *state_of(size_t len, unsigned seed)
{
    unsigned char *s = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        s[i] = (unsigned char)(seed * 31 + i * 7);
    return s;
}

static void save(struct kvdisk *kv, const int32_t *t, int n, const void *s, size_t len)
{
    struct bw_err err;
    bool saved;
    assert_int_equal(kvdisk_save(kv, t, n, s, len, &saved, &err), BW_OK);
    assert_true(saved);
}

/* The .kv files of dir, counted; their total size in *bytes. */
static int count_files(const char *dir, uint64_t *bytes)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (bytes)
        *bytes = 0;
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 3 || strcmp(de->d_name + l - 3, ".kv"))
            continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        if (bytes)
            *bytes += (uint64_t)st.st_size;
        n++;
    }
    closedir(d);
    return n;
}

/* The one .kv file of dir whose name is not `except`, into buf. */
static void only_file(const char *dir, char *buf, size_t len)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    buf[0] = '\0';
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".kv"))
            snprintf(buf, len, "%s/%s", dir, de->d_name);
    closedir(d);
    assert_true(buf[0]);
}

/* ---- save, lookup, load ------------------------------------------------------------------ */

static void a_saved_state_comes_back_for_a_longer_prompt(void **state)
{
    struct fixture *f = *state;
    int32_t *t = tokens_of(300, 1000);
    unsigned char *s = state_of(5000, 1);
    save(f->kv, t, 200, s, 5000);

    struct kvdisk_hit hit;
    assert_true(kvdisk_lookup(f->kv, t, 300, 1, &hit)); /* the prompt goes on past what was saved */
    assert_int_equal(hit.common, 200);
    assert_int_equal(hit.n_tokens, 200);
    assert_int_equal(hit.state_len, 5000);
    void *got;
    size_t len;
    struct bw_err err;
    assert_int_equal(kvdisk_load(f->kv, &hit, &got, &len, &err), BW_OK);
    assert_int_equal(len, 5000);
    assert_memory_equal(got, s, 5000);
    free(got);

    /* a prompt that parts from it at token 130 (inside the third 64-token block) */
    t[130] = -5;
    assert_true(kvdisk_lookup(f->kv, t, 300, 1, &hit));
    assert_int_equal(hit.common, 130);
    assert_int_equal(hit.n_tokens, 200);
    /* min_tokens: a shorter match than asked is no hit */
    assert_false(kvdisk_lookup(f->kv, t, 300, 131, &hit));
    /* a prompt that differs at once */
    t[0] = -1;
    assert_false(kvdisk_lookup(f->kv, t, 300, 1, &hit));
    free(t);
    free(s);
}

static void the_longest_prefix_wins_and_a_reopen_finds_it_again(void **state)
{
    struct fixture *f = *state;
    int32_t *a = tokens_of(500, 0), *b = tokens_of(500, 0), *c = tokens_of(500, 0);
    b[100] = -1; /* b shares 100 with a */
    c[400] = -1; /* c shares 400 with a */
    unsigned char *sb = state_of(700, 2), *sc = state_of(900, 3);
    save(f->kv, b, 500, sb, 700);
    save(f->kv, c, 450, sc, 900);
    struct kvdisk_hit hit;
    assert_true(kvdisk_lookup(f->kv, a, 500, 1, &hit));
    assert_int_equal(hit.common, 400);
    assert_int_equal(hit.state_len, 900);

    kvdisk_close(f->kv); /* a restart */
    f->kv = open_kv(f->dir, 1 << 20, "sha256:aaaa", "sha256:aaaa f16");
    assert_true(kvdisk_lookup(f->kv, a, 500, 1, &hit));
    assert_int_equal(hit.common, 400);
    void *got;
    size_t len;
    assert_int_equal(kvdisk_load(f->kv, &hit, &got, &len, NULL), BW_OK);
    assert_memory_equal(got, sc, 900);
    free(got);
    /* b's prefix of 100 is found for a prompt that follows b */
    assert_true(kvdisk_lookup(f->kv, b, 120, 1, &hit));
    assert_int_equal(hit.common, 120);
    free(a), free(b), free(c), free(sb), free(sc);
}

static void a_longer_save_supersedes_its_prefixes(void **state)
{
    struct fixture *f = *state;
    int32_t *t = tokens_of(400, 7);
    unsigned char *s = state_of(300, 4);
    save(f->kv, t, 100, s, 100);
    save(f->kv, t, 250, s, 200);
    assert_int_equal(count_files(f->dir, NULL), 1); /* turn 2 holds turn 1 */
    save(f->kv, t, 250, s, 300);                     /* the same tokens again: replaced */
    assert_int_equal(count_files(f->dir, NULL), 1);
    struct kvdisk_hit hit;
    assert_true(kvdisk_lookup(f->kv, t, 400, 1, &hit));
    assert_int_equal(hit.common, 250);
    assert_int_equal(hit.state_len, 300);
    struct kvdisk_usage u;
    kvdisk_usage(f->kv, &u);
    assert_int_equal(u.entries, 1);
    assert_int_equal(u.files, 1);
    free(t);
    free(s);
}

/* ---- bad files --------------------------------------------------------------------------------- */

static void a_corrupt_file_is_not_loaded_and_is_removed(void **state)
{
    struct fixture *f = *state;
    int32_t *t = tokens_of(100, 1);
    unsigned char *s = state_of(4096, 5);
    save(f->kv, t, 100, s, 4096);
    char path[600];
    only_file(f->dir, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    fstat(fd, &st);
    unsigned char x;
    assert_int_equal(pread(fd, &x, 1, st.st_size - 100), 1); /* a bit flipped in the state */
    x ^= 0x10;
    assert_int_equal(pwrite(fd, &x, 1, st.st_size - 100), 1);
    close(fd);
    struct kvdisk_hit hit;
    assert_true(kvdisk_lookup(f->kv, t, 100, 1, &hit));
    void *got = NULL;
    size_t len;
    struct bw_err err;
    assert_int_equal(kvdisk_load(f->kv, &hit, &got, &len, &err), BW_EINVAL);
    assert_non_null(strstr(err.msg, "checksum"));
    assert_null(got);
    assert_int_equal(count_files(f->dir, NULL), 0);
    assert_false(kvdisk_lookup(f->kv, t, 100, 1, &hit));
    free(t);
    free(s);
}

static void torn_and_foreign_files_are_skipped_at_open(void **state)
{
    struct fixture *f = *state;
    int32_t *t = tokens_of(100, 1);
    unsigned char *s = state_of(2000, 6);
    save(f->kv, t, 100, s, 2000);
    char path[600];
    only_file(f->dir, path, sizeof path);
    assert_int_equal(truncate(path, 1500), 0); /* a write cut short */
    /* a file of another model, and a stale temporary file of a writer that is gone */
    struct kvdisk *other = open_kv(f->dir, 1 << 20, "sha256:bbbb", "sha256:bbbb f16");
    save(other, t, 100, s, 2000);
    kvdisk_close(other);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s/x.kv.tmp.999999999", f->dir);
    FILE *fp = fopen(tmp, "w");
    fputs("half", fp);
    fclose(fp);

    kvdisk_close(f->kv);
    f->kv = open_kv(f->dir, 1 << 20, "sha256:aaaa", "sha256:aaaa f16");
    struct kvdisk_hit hit;
    assert_false(kvdisk_lookup(f->kv, t, 100, 1, &hit)); /* the torn one is gone, the other model's is not ours */
    assert_int_equal(count_files(f->dir, NULL), 1);
    assert_int_equal(access(tmp, F_OK), -1);
    /* the same model with another KV type is another setup: not found either */
    struct kvdisk *q8 = open_kv(f->dir, 1 << 20, "sha256:bbbb", "sha256:bbbb q8_0");
    assert_false(kvdisk_lookup(q8, t, 100, 1, &hit));
    kvdisk_close(q8);
    struct kvdisk *b = open_kv(f->dir, 1 << 20, "sha256:bbbb", "sha256:bbbb f16");
    assert_true(kvdisk_lookup(b, t, 100, 1, &hit));
    kvdisk_close(b);
    free(t);
    free(s);
}

/* A file of another setup renamed to this setup's name (copied by hand, or a forged name):
 * its header says whose it is; never loaded, and removed, since it is valid for no one. */
static void a_foreign_state_under_this_setups_name_is_removed(void **state)
{
    struct fixture *f = *state;
    int32_t *t = tokens_of(100, 1);
    unsigned char *s = state_of(2000, 6);
    struct kvdisk *q8 = open_kv(f->dir, 1 << 20, "sha256:aaaa", "sha256:aaaa q8_0");
    save(q8, t, 100, s, 2000);
    kvdisk_close(q8);
    char q8_path[600];
    only_file(f->dir, q8_path, sizeof q8_path);
    save(f->kv, t, 100, s, 2000); /* the f16 setup's own name for the same tokens */
    char ours[600] = "";
    DIR *d = opendir(f->dir);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".kv") && strcmp(strrchr(q8_path, '/') + 1, de->d_name))
            snprintf(ours, sizeof ours, "%s/%s", f->dir, de->d_name);
    closedir(d);
    assert_true(ours[0]);
    kvdisk_close(f->kv);
    f->kv = NULL;
    assert_int_equal(rename(q8_path, ours), 0); /* the q8_0 state now carries the f16 name */

    f->kv = open_kv(f->dir, 1 << 20, "sha256:aaaa", "sha256:aaaa f16");
    struct kvdisk_hit hit;
    assert_false(kvdisk_lookup(f->kv, t, 100, 1, &hit));
    assert_int_equal(access(ours, F_OK), -1);
    assert_int_equal(count_files(f->dir, NULL), 0);
    free(t);
    free(s);
}

/* ---- the budget ---------------------------------------------------------------------------------- */

static void the_budget_holds_and_the_least_recently_used_go_first(void **state)
{
    struct fixture *f = *state;
    kvdisk_close(f->kv);
    const uint64_t budget = 10000;
    f->kv = open_kv(f->dir, budget, "sha256:aaaa", "sha256:aaaa f16");
    unsigned char *s = state_of(3000, 7);
    int32_t *t[5];
    for (int i = 0; i < 5; i++) {
        t[i] = tokens_of(10, 100 * (i + 1));
        save(f->kv, t[i], 10, s, 3000);
        uint64_t bytes;
        count_files(f->dir, &bytes);
        assert_true(bytes <= budget);
        if (i == 2) { /* load the first one: it is now used more recently than the second and third */
            struct kvdisk_hit hit;
            struct timespec pause = {0, 20 * 1000 * 1000};
            nanosleep(&pause, NULL);
            assert_true(kvdisk_lookup(f->kv, t[0], 10, 1, &hit));
            void *got;
            size_t len;
            assert_int_equal(kvdisk_load(f->kv, &hit, &got, &len, NULL), BW_OK);
            free(got);
        }
        struct timespec pause = {0, 20 * 1000 * 1000}; /* distinct mtimes on any file system */
        nanosleep(&pause, NULL);
    }
    /* three ~3 KB files fit in 10 KB: by save time 2, 3 and 4 would stay, but 0 was used
     * after 2 was saved, so 1 went first, then 2 */
    assert_int_equal(count_files(f->dir, NULL), 3);
    struct kvdisk_hit hit;
    assert_true(kvdisk_lookup(f->kv, t[0], 10, 1, &hit));
    assert_false(kvdisk_lookup(f->kv, t[1], 10, 1, &hit));
    assert_false(kvdisk_lookup(f->kv, t[2], 10, 1, &hit));
    assert_true(kvdisk_lookup(f->kv, t[4], 10, 1, &hit));
    assert_true(kvdisk_lookup(f->kv, t[3], 10, 1, &hit));
    /* a state larger than the whole budget is not saved */
    unsigned char *big = state_of(20000, 8);
    bool saved = true;
    assert_int_equal(kvdisk_save(f->kv, t[2], 10, big, 20000, &saved, NULL), BW_OK);
    assert_false(saved);
    free(big);
    for (int i = 0; i < 5; i++)
        free(t[i]);
    free(s);
}

struct listed {
    int n, tokens;
    bool saw_a, saw_b;
};

static int on_entry(void *ud, const struct kvdisk_entry_info *e)
{
    struct listed *l = ud;
    l->n++;
    l->tokens += e->n_tokens;
    l->saw_a |= !strcmp(e->setup_key, "sha256:aaaa f16");
    l->saw_b |= !strcmp(e->setup_key, "sha256:bbbb f16");
    /* the listing names the model that saved an entry, as kvdisk_model_id writes it */
    char id[17];
    kvdisk_model_id(!strcmp(e->setup_key, "sha256:aaaa f16") ? "sha256:aaaa" : "sha256:bbbb", id);
    assert_string_equal(e->model_id, id);
    assert_true(e->bytes > 100 && e->mtime_ns > 0);
    return 0;
}

static void clear_and_remove_model(void **state)
{
    struct fixture *f = *state;
    int32_t *t = tokens_of(50, 1);
    unsigned char *s = state_of(100, 9);
    save(f->kv, t, 50, s, 100);
    struct kvdisk *b = open_kv(f->dir, 1 << 20, "sha256:bbbb", "sha256:bbbb f16");
    save(b, t, 50, s, 100);
    kvdisk_close(b);
    assert_int_equal(count_files(f->dir, NULL), 2);
    struct listed l = {0};
    assert_int_equal(kvdisk_list(f->dir, on_entry, &l), 2);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.tokens, 100);
    assert_true(l.saw_b && l.saw_a);
    uint64_t before, after, freed = 0;
    count_files(f->dir, &before);
    assert_int_equal(kvdisk_clear_model(f->dir, "sha256:cccc", &freed), 0); /* no such model: nothing */
    assert_int_equal(freed, 0);
    assert_int_equal(kvdisk_clear_model(f->dir, "sha256:bbbb", &freed), 1);
    assert_int_equal(count_files(f->dir, &after), 1);
    assert_true(freed > 100);
    assert_int_equal(freed, before - after); /* the bytes of the file that went */
    save(b = open_kv(f->dir, 1 << 20, "sha256:bbbb", "sha256:bbbb f16"), t, 50, s, 100);
    kvdisk_close(b);
    assert_int_equal(kvdisk_remove_model(f->dir, "sha256:bbbb"), 1);
    assert_int_equal(count_files(f->dir, NULL), 1);
    assert_int_equal(kvdisk_clear(f->kv), 1);
    assert_int_equal(count_files(f->dir, NULL), 0);
    struct kvdisk_hit hit;
    assert_false(kvdisk_lookup(f->kv, t, 50, 1, &hit));
    free(t);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_saved_state_comes_back_for_a_longer_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(the_longest_prefix_wins_and_a_reopen_finds_it_again, setup, teardown),
        cmocka_unit_test_setup_teardown(a_longer_save_supersedes_its_prefixes, setup, teardown),
        cmocka_unit_test_setup_teardown(a_corrupt_file_is_not_loaded_and_is_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(torn_and_foreign_files_are_skipped_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(a_foreign_state_under_this_setups_name_is_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(the_budget_holds_and_the_least_recently_used_go_first, setup, teardown),
        cmocka_unit_test_setup_teardown(clear_and_remove_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
