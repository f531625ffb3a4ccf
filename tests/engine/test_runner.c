/* test_runner.c -- `bellows runner` through its protocol (docs/runner-protocol.md), driven by
 * the same client the server uses (src/proto/client.c). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/client.h"
#include "proto/proto.h"

#define DEMO BELLOWS_TEST_MODELS "/demo.gguf"

static struct runner_client *spawn(int n_parallel, struct proto_ready *ready)
{
    struct runner_spawn_opts o = {.exe = BELLOWS_EXE, .model = DEMO, .n_parallel = n_parallel, .n_threads = 2};
    struct runner_client *c = NULL;
    struct bw_err err;
    if (runner_client_spawn(&o, &c, ready, &err) != BW_OK)
        fail_msg("spawn: %s", err.msg);
    return c;
}

static struct proto_request chat_request(uint64_t id, const char *text, int num_predict)
{
    static struct policy_msg msg;
    msg = (struct policy_msg){.role = "user", .content = text};
    struct proto_request r = {.type = PROTO_REQ_CHAT, .id = id};
    r.req.kind = ENGINE_CHAT;
    r.req.msgs = &msg;
    r.req.n_msgs = 1;
    r.req.num_predict = num_predict;
    r.req.num_keep = -1;
    sampling_params_default(&r.req.sampling);
    r.req.sampling.temperature = 0;
    return r;
}

static void send_ok(struct runner_client *c, const struct proto_request *r)
{
    struct bw_err err;
    if (runner_client_send(c, r, &err) != BW_OK)
        fail_msg("send: %s", err.msg);
}

/* Receives the next event (10 s at most). */
static void recv_ok(struct runner_client *c, struct proto_event *ev)
{
    struct bw_err err;
    int rc = runner_client_recv(c, ev, 10000, &err);
    if (rc != 1)
        fail_msg("recv: %d %s", rc, rc ? err.msg : "timeout");
}

struct transcript {
    char text[8192];
    size_t len;
    bool done, failed;
    struct engine_stats st;
    char reason[16];
    char error[256];
};

/* The ids of the token events, in arrival order (collect appends; reset before use). */
static uint64_t token_order[4096];
static int n_token_order;

/* Reads events until every id in ids[] is done, sorting them by id. */
static void collect(struct runner_client *c, const uint64_t *ids, struct transcript *t, int n)
{
    int open = n;
    for (int guard = 0; open && guard < 100000; guard++) {
        struct proto_event ev;
        recv_ok(c, &ev);
        int k = -1;
        for (int i = 0; i < n; i++)
            if (ids[i] == ev.id)
                k = i;
        assert_true(k >= 0);
        assert_false(t[k].done);
        if (ev.type == PROTO_EV_TOKEN) {
            if (n_token_order < (int)(sizeof token_order / sizeof token_order[0]))
                token_order[n_token_order++] = ev.id;
            assert_true(t[k].len + ev.len < sizeof t[k].text);
            memcpy(t[k].text + t[k].len, ev.text, ev.len);
            t[k].len += ev.len;
        } else if (ev.type == PROTO_EV_DONE) {
            t[k].st = ev.stats;
            snprintf(t[k].reason, sizeof t[k].reason, "%s", ev.stats.done_reason);
            t[k].done = true;
            open--;
        } else if (ev.type == PROTO_EV_ERROR) {
            snprintf(t[k].error, sizeof t[k].error, "%.*s", (int)ev.len, ev.text);
            t[k].done = t[k].failed = true;
            open--;
        }
        proto_event_free(&ev);
    }
    assert_int_equal(open, 0);
}

static void ready_frame_describes_the_model(void **state)
{
    (void)state;
    struct proto_ready ready;
    struct runner_client *c = spawn(3, &ready);
    assert_int_equal(ready.pid, runner_client_pid(c));
    assert_int_equal(ready.n_ctx_train, 32768);
    assert_int_equal(ready.context_max, 32768);
    assert_int_equal(ready.n_embd, 256); /* the demo model: tools/mkmodel.c */
    assert_int_equal(ready.n_parallel, 3);
    assert_true(ready.load_ns > 0);
    assert_true(runner_client_close(c) == 0); /* EOF: the runner exits cleanly */
}

static void concurrent_requests_interleave_and_match_solo(void **state)
{
    (void)state;
    struct runner_client *c = spawn(4, NULL);
    /* alone first */
    struct transcript solo[2] = {0};
    struct proto_request a = chat_request(11, "Tell me a story.", 24);
    send_ok(c, &a);
    collect(c, &a.id, &solo[0], 1);
    struct proto_request b = chat_request(12, "Name a colour.", 24);
    send_ok(c, &b);
    collect(c, &b.id, &solo[1], 1);
    /* then both at once, on new ids */
    struct transcript both[2] = {0};
    a.id = 21;
    b.id = 22;
    struct proto_request a2 = chat_request(21, "Tell me a story.", 24);
    send_ok(c, &a2);
    struct proto_request b2 = chat_request(22, "Name a colour.", 24);
    send_ok(c, &b2);
    uint64_t ids[2] = {21, 22};
    n_token_order = 0;
    collect(c, ids, both, 2);
    /* They really ran together: continuous batching gives each a token per step, so the
     * two streams alternate; one after the other would switch once. */
    int switches = 0;
    for (int i = 1; i < n_token_order; i++)
        switches += token_order[i] != token_order[i - 1];
    assert_true(n_token_order >= 20);
    assert_true(switches >= 10);
    for (int i = 0; i < 2; i++) {
        assert_false(both[i].failed);
        assert_int_equal(both[i].len, solo[i].len);
        assert_memory_equal(both[i].text, solo[i].text, solo[i].len);
        assert_string_equal(both[i].reason, "length");
        assert_int_equal(both[i].st.eval_count, 24);
        assert_int_equal(both[i].st.context_length, 4096);
        assert_int_equal(both[i].st.context_max, 32768);
    }
    /* the second round reused the first round's prompts from the cache */
    assert_true(both[0].st.prompt_cache_tokens > 0);
    runner_client_close(c);
}

static void write_raw_frame(struct runner_client *c, const char *json)
{
    uint8_t hdr[4];
    proto_frame_header((uint32_t)strlen(json), hdr);
    assert_int_equal(send(runner_client_fd(c), hdr, 4, 0), 4);
    assert_int_equal(send(runner_client_fd(c), json, strlen(json), 0), (ssize_t)strlen(json));
}

static void bad_messages_get_errors_and_the_runner_keeps_serving(void **state)
{
    (void)state;
    struct runner_client *c = spawn(2, NULL);
    struct proto_event ev;

    write_raw_frame(c, "{\"type\":\"chat\",\"id\":5,\"messages\":[");
    recv_ok(c, &ev);
    assert_int_equal(ev.type, PROTO_EV_ERROR);
    assert_non_null(strstr(ev.text, "malformed"));
    proto_event_free(&ev);

    write_raw_frame(c, "{\"type\":\"dance\",\"id\":6}");
    recv_ok(c, &ev);
    assert_int_equal(ev.type, PROTO_EV_ERROR);
    assert_int_equal(ev.id, 6);
    assert_non_null(strstr(ev.text, "unknown message type 'dance'"));
    proto_event_free(&ev);

    write_raw_frame(c, "{\"type\":\"chat\",\"id\":7,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"options\":{\"temperature\":\"hot\"}}");
    recv_ok(c, &ev);
    assert_int_equal(ev.type, PROTO_EV_ERROR);
    assert_int_equal(ev.id, 7);
    assert_non_null(strstr(ev.text, "option 'temperature' must be a number"));
    proto_event_free(&ev);

    write_raw_frame(c, "{\"type\":\"chat\",\"id\":8,\"messages\":[]}");
    recv_ok(c, &ev);
    assert_int_equal(ev.type, PROTO_EV_ERROR);
    assert_int_equal(ev.id, 8);
    proto_event_free(&ev);

    /* still serving */
    struct transcript t = {0};
    struct proto_request ok = chat_request(9, "Still there?", 5);
    send_ok(c, &ok);
    collect(c, &ok.id, &t, 1);
    assert_false(t.failed);
    assert_int_equal(t.st.eval_count, 5);
    runner_client_close(c);
}

static void tokenize_detokenize_status_and_embed(void **state)
{
    (void)state;
    struct runner_client *c = spawn(2, NULL);
    struct proto_event ev;
    struct proto_request r = {.type = PROTO_REQ_TOKENIZE, .id = 1};
    r.req.prompt = "Hello world, bellows!";
    send_ok(c, &r);
    recv_ok(c, &ev);
    assert_int_equal(ev.type, PROTO_EV_TOKENS);
    assert_true(ev.n_tokens >= 4);
    int32_t toks[64];
    int n = ev.n_tokens;
    memcpy(toks, ev.tokens, (size_t)n * sizeof *toks);
    proto_event_free(&ev);

    struct proto_request d = {.type = PROTO_REQ_DETOKENIZE, .id = 2, .tokens = toks, .n_tokens = n};
    send_ok(c, &d);
    recv_ok(c, &ev);
    assert_int_equal(ev.type, PROTO_EV_TEXT);
    assert_int_equal(ev.len, strlen("Hello world, bellows!"));
    assert_memory_equal(ev.text, "Hello world, bellows!", ev.len);
    proto_event_free(&ev);

    /* an id outside the vocabulary is an error, not a crash */
    int32_t bad[2] = {toks[0], 99999999};
    struct proto_request dbad = {.type = PROTO_REQ_DETOKENIZE, .id = 22, .tokens = bad, .n_tokens = 2};
    send_ok(c, &dbad);
    recv_ok(c, &ev);
    assert_int_equal(ev.type, PROTO_EV_ERROR);
    assert_int_equal(ev.id, 22);
    proto_event_free(&ev);

    struct proto_request s = {.type = PROTO_REQ_STATUS, .id = 3};
    send_ok(c, &s);
    recv_ok(c, &ev);
    assert_int_equal(ev.type, PROTO_EV_STATUS);
    assert_int_equal(ev.status.pool_cells, 0); /* no request yet: no KV */
    assert_int_equal(ev.status.n_parallel, 2);
    proto_event_free(&ev);

    struct proto_request e = {.type = PROTO_REQ_EMBED, .id = 4};
    e.req.kind = ENGINE_EMBED;
    e.req.prompt = "an embedding of this sentence";
    e.req.truncate = true;
    send_ok(c, &e);
    recv_ok(c, &ev);
    assert_int_equal(ev.type, PROTO_EV_EMBEDDING);
    assert_int_equal(ev.n_embd, 256);
    double norm = 0;
    for (int i = 0; i < ev.n_embd; i++)
        norm += ev.embd[i] * ev.embd[i];
    assert_true(norm > 0);
    proto_event_free(&ev);
    recv_ok(c, &ev);
    assert_int_equal(ev.type, PROTO_EV_DONE);
    assert_int_equal(ev.id, 4);
    proto_event_free(&ev);

    send_ok(c, &s);
    recv_ok(c, &ev);
    assert_int_equal(ev.status.pool_cells, 4096);
    assert_int_equal(ev.status.live, 0);
    assert_int_equal(ev.status.kv_bytes, 4096u * ev.status.kv_bytes_per_cell);
    proto_event_free(&ev);
    runner_client_close(c);
}

/* Is pid stopped (state T in /proc/pid/stat)? */
static bool process_stopped(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    return close_paren && (close_paren[2] == 'T' || close_paren[2] == 't');
}

static void cancel_ends_the_request_within_a_step(void **state)
{
    (void)state;
    struct runner_client *c = spawn(2, NULL);
    struct proto_request r = chat_request(31, "Go on forever.", 100000);
    send_ok(c, &r);
    struct proto_event ev;
    int tokens = 0;
    while (tokens < 5) {
        recv_ok(c, &ev);
        assert_int_equal(ev.type, PROTO_EV_TOKEN);
        tokens++;
        proto_event_free(&ev);
    }
    /* Freeze the runner, queue the cancel, drain every event it wrote before: once it
     * resumes it may finish the step it was in (one token) and must then stop. */
    pid_t pid = runner_client_pid(c);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    for (int i = 0; i < 500 && !process_stopped(pid); i++)
        usleep(2000);
    assert_true(process_stopped(pid));
    struct proto_request cancel = {.type = PROTO_REQ_CANCEL, .id = 31};
    send_ok(c, &cancel);
    struct bw_err err;
    while (runner_client_recv(c, &ev, 300, &err) == 1) {
        assert_int_equal(ev.type, PROTO_EV_TOKEN); /* nothing else can come: it is frozen */
        proto_event_free(&ev);
    }
    assert_int_equal(kill(pid, SIGCONT), 0);
    struct transcript t = {0};
    n_token_order = 0;
    collect(c, &r.id, &t, 1);
    assert_string_equal(t.reason, "cancel");
    assert_true(n_token_order <= 1); /* within one step */
    runner_client_close(c);
}

static void corrupt_model_is_a_clear_error(void **state)
{
    (void)state;
    char path[] = "/tmp/bellows-corrupt-XXXXXX.gguf";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    /* The real magic, then garbage: gets past the first check, fails in the loader. */
    const char junk[] = "GGUF\x03\x00\x00\x00garbage that is not a model";
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    struct runner_spawn_opts o = {.exe = BELLOWS_EXE, .model = path, .ready_timeout_ms = 20000};
    struct runner_client *c = NULL;
    struct bw_err err;
    assert_int_equal(runner_client_spawn(&o, &c, NULL, &err), BW_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err.msg, "not a model llama.cpp can load"));
    o.model = "/nonexistent/model.gguf";
    assert_int_equal(runner_client_spawn(&o, &c, NULL, &err), BW_ENOTFOUND);
    unlink(path);
}

static void killed_runner_is_seen_as_gone(void **state)
{
    (void)state;
    struct runner_client *c = spawn(1, NULL);
    struct proto_request r = chat_request(41, "Talk.", 100000);
    send_ok(c, &r);
    struct proto_event ev;
    recv_ok(c, &ev);
    proto_event_free(&ev);
    kill(runner_client_pid(c), SIGKILL);
    struct bw_err err;
    int rc;
    for (int i = 0; i < 100000; i++) { /* drain what was sent before the kill */
        rc = runner_client_recv(c, &ev, 5000, &err);
        if (rc != 1)
            break;
        proto_event_free(&ev);
    }
    assert_int_equal(rc, BW_EIO);
    int status = runner_client_close(c);
    assert_true(WIFSIGNALED(status));
}

/* ---- process hygiene (issue 13 item 5): fake runners, shell scripts that never say ready ---- */

static char script_dir[] = "/tmp/bellows-fake-runner-XXXXXX";

static const char *write_script(const char *name, const char *body)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", script_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s", body);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    return path;
}

static char *slurp(const char *path)
{
    static char buf[1024];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static double spawn_fake(const char *exe, int *rc)
{
    struct runner_spawn_opts o = {.exe = exe, .model = DEMO, .ready_timeout_ms = 300};
    struct runner_client *c = NULL;
    struct bw_err err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *rc = runner_client_spawn(&o, &c, NULL, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_null(c);
    return (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/* The server blocks SIGINT/SIGTERM in its threads and ignores SIGPIPE; none of it reaches a
 * runner, and neither does a descriptor the server holds without close-on-exec. A runner
 * that ignores EOF and SIGTERM is killed after the grace periods and reaped. */
static void runner_starts_clean_and_one_that_ignores_sigterm_is_killed(void **state)
{
    (void)state;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    void (*old_usr1)(int) = signal(SIGUSR1, SIG_IGN);
    /* no O_CLOEXEC, like a descriptor a library left behind; at a number the shell won't use */
    int leak = 37;
    int null_fd = open("/dev/null", O_RDONLY);
    assert_int_equal(dup2(null_fd, leak), leak);
    close(null_fd);
    assert_non_null(mkdtemp(script_dir));
    char out[300];
    const char *stubborn = write_script(
        "stubborn", /* builtins only: a forking shell blocks signals around each fork */
                    "while read -r k v; do case $k in SigBlk:|SigIgn:) echo \"$k $v\";; esac; done "
                    "< /proc/$$/status > \"$BELLOWS_TEST_OUT\"\n"
                    "ls /proc/$$/fd >> \"$BELLOWS_TEST_OUT\"\n"
                    "trap '' TERM\nexec sleep 60\n");
    snprintf(out, sizeof out, "%s/out", script_dir);
    setenv("BELLOWS_TEST_OUT", out, 1);
    int rc;
    double s = spawn_fake(stubborn, &rc);
    assert_int_equal(rc, BW_ERUNNER);
    /* EOF grace, then SIGTERM grace, then SIGKILL */
    double grace = (RUNNER_CLIENT_EOF_GRACE_MS + RUNNER_CLIENT_TERM_GRACE_MS) / 1000.0;
    assert_true(s >= grace);
    assert_true(s < grace + 3);
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child left, not even a zombie */
    assert_int_equal(errno, ECHILD);
    char *got = slurp(out);
    assert_non_null(got);
    print_message("the fake runner saw:\n%s", got);
    assert_non_null(strstr(got, "SigBlk: 0000000000000000"));
    assert_non_null(strstr(got, "SigIgn: 0000000000000000"));
    /* the shell's own (the script it reads) may show; the leaked one may not */
    assert_null(strstr(got, "\n37\n"));
    assert_non_null(strstr(got, "0000\n0\n1\n"));
    assert_non_null(strstr(got, "\n2\n3\n"));
    assert_null(strstr(got, "\n4\n")); /* 0-3, and the shell's own (10 and up: the script it reads) */

    /* A runner that exits on SIGTERM gets it (rather than SIGKILL) after the EOF grace. */
    unlink(out);
    const char *polite = write_script("polite", "trap 'echo term > \"$BELLOWS_TEST_OUT\"; exit 0' TERM\n"
                                                "while :; do sleep 0.05; done\n");
    s = spawn_fake(polite, &rc);
    assert_int_equal(rc, BW_ERUNNER);
    assert_true(s >= RUNNER_CLIENT_EOF_GRACE_MS / 1000.0);
    assert_true(s < grace);
    got = slurp(out);
    assert_non_null(got);
    assert_string_equal(got, "term\n");
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);

    close(leak);
    signal(SIGUSR1, old_usr1);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    unlink(out);
    char path[300];
    snprintf(path, sizeof path, "%s/stubborn", script_dir), unlink(path);
    snprintf(path, sizeof path, "%s/polite", script_dir), unlink(path);
    rmdir(script_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ready_frame_describes_the_model),
        cmocka_unit_test(concurrent_requests_interleave_and_match_solo),
        cmocka_unit_test(bad_messages_get_errors_and_the_runner_keeps_serving),
        cmocka_unit_test(tokenize_detokenize_status_and_embed),
        cmocka_unit_test(cancel_ends_the_request_within_a_step),
        cmocka_unit_test(corrupt_model_is_a_clear_error),
        cmocka_unit_test(killed_runner_is_seen_as_gone),
        cmocka_unit_test(runner_starts_clean_and_one_that_ignores_sigterm_is_killed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
