/* metrics.c -- counters for /metrics, in Prometheus' text format. Lock-free counters
 * (atomics); route names are registered once under a mutex. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

/* Histogram bounds in seconds (TTFT and per-token latency share them). */
static const double bounds[METRICS_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

static int route_index(struct metrics *m, const char *route)
{
    pthread_mutex_lock(&m->mu);
    int i = 0;
    const int other = METRICS_ROUTES - 1;
    while (i < other && m->route[i] && strcmp(m->route[i], route))
        i++;
    if (i < other && !m->route[i])
        m->route[i] = strdup(route); /* freed by metrics_fini */
    if (i == other) { /* the table is full: counted as "other", never under another route's name */
        for (i = 0; i < other && strcmp(m->route[i], "other"); i++)
            ;
        if (i == other && !m->route[other])
            m->route[other] = strdup("other");
    }
    pthread_mutex_unlock(&m->mu);
    return i;
}

void metrics_fini(struct metrics *m)
{
    for (int i = 0; i < METRICS_ROUTES; i++)
        free((char *)m->route[i]);
    pthread_mutex_destroy(&m->mu);
}

void metrics_request(struct metrics *m, const char *route, int status)
{
    int i = route_index(m, route);
    int k = status >= 100 && status < 600 ? status / 100 - 1 : 5;
    atomic_fetch_add(&m->by_status[i][k], 1);
}

static void observe(struct histogram *h, double seconds)
{
    for (int i = 0; i < METRICS_BUCKETS; i++)
        if (seconds <= bounds[i])
            atomic_fetch_add(&h->le[i], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, (uint64_t)(seconds * 1e6));
}

void metrics_generation(struct metrics *m, const struct engine_stats *st)
{
    atomic_fetch_add(&m->tokens_in, (uint64_t)st->prompt_eval_count);
    atomic_fetch_add(&m->tokens_cached, (uint64_t)st->prompt_cache_tokens);
    atomic_fetch_add(&m->tokens_out, (uint64_t)st->eval_count);
    atomic_fetch_add(&m->pool_growths, (uint64_t)st->pool_growths);
    if (st->truncated_messages || st->truncated_tokens) {
        atomic_fetch_add(&m->truncations, 1);
        atomic_fetch_add(&m->truncated_tokens, (uint64_t)st->truncated_tokens);
    }
    if (st->ttft_ns > 0)
        observe(&m->ttft, st->ttft_ns / 1e9);
    if (st->eval_count > 1 && st->eval_ns > 0)
        observe(&m->per_token, st->eval_ns / 1e9 / st->eval_count);
}

static void add(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct strbuf *b, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        strbuf_add(b, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
}

/* A label value as the Prometheus text format wants it: backslash, double quote and
 * newline escaped (\\, \", \n). Cut (never mid-escape) to fit buf. */
static const char *label_escape(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    for (; *s && o + 3 < len; s++) {
        char c = *s;
        if (c == '\\' || c == '"' || c == '\n') {
            buf[o++] = '\\';
            buf[o++] = c == '\n' ? 'n' : c;
        } else {
            buf[o++] = c;
        }
    }
    buf[o] = '\0';
    return buf;
}

static void histogram(struct strbuf *b, const char *name, const char *help, struct histogram *h)
{
    add(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < METRICS_BUCKETS; i++)
        add(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)atomic_load(&h->le[i]));
    add(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)atomic_load(&h->count));
    add(b, "%s_sum %.6f\n%s_count %llu\n", name, atomic_load(&h->sum_us) / 1e6, name,
        (unsigned long long)atomic_load(&h->count));
}

char *metrics_render(struct metrics *m, struct sched *sched, size_t *len)
{
    struct strbuf b = {0};
    static const char *const classes[6] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
    add(&b, "# HELP bellows_requests_total HTTP requests by route and status class.\n"
            "# TYPE bellows_requests_total counter\n");
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < METRICS_ROUTES && m->route[i]; i++)
        for (int k = 0; k < 6; k++) {
            uint64_t v = atomic_load(&m->by_status[i][k]);
            char route[256];
            if (v)
                add(&b, "bellows_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                    label_escape(m->route[i], route, sizeof route), classes[k], (unsigned long long)v);
        }
    pthread_mutex_unlock(&m->mu);
    const struct {
        const char *name, *help;
        _Atomic uint64_t *value;
    } counters[] = {
        {"bellows_prompt_tokens_total", "Prompt tokens after any cut (cached ones included).", &m->tokens_in},
        {"bellows_prompt_cache_tokens_total", "Prompt tokens reused from the prefix cache.", &m->tokens_cached},
        {"bellows_generated_tokens_total", "Generated tokens.", &m->tokens_out},
        {"bellows_truncations_total", "Requests whose prompt was cut at the context maximum.", &m->truncations},
        {"bellows_truncated_tokens_total", "Prompt tokens dropped by cuts.", &m->truncated_tokens},
        {"bellows_pool_growths_total", "KV pool growths seen by finished requests.", &m->pool_growths},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        add(&b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counters[i].name, counters[i].help, counters[i].name,
            counters[i].name, (unsigned long long)atomic_load(counters[i].value));
    histogram(&b, "bellows_time_to_first_token_seconds", "Time from request to first token.", &m->ttft);
    histogram(&b, "bellows_token_latency_seconds", "Mean time per generated token, per request.", &m->per_token);

    struct sched_counters c;
    sched_counters(sched, &c);
    add(&b, "# HELP bellows_loaded_models Models with a runner.\n# TYPE bellows_loaded_models gauge\n"
            "bellows_loaded_models %d\n", c.loaded);
    add(&b, "# HELP bellows_queue_depth Requests waiting or running.\n# TYPE bellows_queue_depth gauge\n"
            "bellows_queue_depth %d\n", c.queue_depth);
    add(&b, "# HELP bellows_model_loads_total Runner starts.\n# TYPE bellows_model_loads_total counter\n"
            "bellows_model_loads_total %llu\n", (unsigned long long)c.loads);
    add(&b, "# HELP bellows_runner_deaths_total Runners that stopped unexpectedly.\n"
            "# TYPE bellows_runner_deaths_total counter\nbellows_runner_deaths_total %llu\n",
        (unsigned long long)c.runner_deaths);
    add(&b, "# HELP bellows_rejected_busy_total Requests answered 503 (queue full).\n"
            "# TYPE bellows_rejected_busy_total counter\nbellows_rejected_busy_total %llu\n",
        (unsigned long long)c.rejected_busy);
    struct sched_loaded loaded[16];
    size_t n = sched_list(sched, loaded, 16);
    add(&b, "# HELP bellows_kv_pool_tokens KV cells in each runner's pool.\n# TYPE bellows_kv_pool_tokens gauge\n");
    char label[2 * NAMES_FULL_MAX + 1];
    for (size_t i = 0; i < n && i < 16; i++)
        add(&b, "bellows_kv_pool_tokens{model=\"%s\"} %d\n", label_escape(loaded[i].name, label, sizeof label),
            loaded[i].status.pool_cells);
    add(&b, "# HELP bellows_kv_used_tokens KV cells holding tokens.\n# TYPE bellows_kv_used_tokens gauge\n");
    for (size_t i = 0; i < n && i < 16; i++)
        add(&b, "bellows_kv_used_tokens{model=\"%s\"} %d\n", label_escape(loaded[i].name, label, sizeof label),
            loaded[i].status.used_cells);
    /* Growth (issue 17): each growth's cost, and whether a request waited for it or it was
     * made while idle ahead of the next turn. */
    add(&b, "# HELP bellows_kv_pool_growths_total Pool growths of each runner, by when they happened.\n"
            "# TYPE bellows_kv_pool_growths_total counter\n");
    for (size_t i = 0; i < n && i < 16; i++) {
        label_escape(loaded[i].name, label, sizeof label);
        const struct engine_status *st = &loaded[i].status;
        add(&b, "bellows_kv_pool_growths_total{model=\"%s\",when=\"ahead\"} %d\n", label, st->pool_growths_ahead);
        add(&b, "bellows_kv_pool_growths_total{model=\"%s\",when=\"on_request\"} %d\n", label,
            st->pool_growths - st->pool_growths_ahead);
    }
    add(&b, "# HELP bellows_kv_pool_growth_seconds_total Time each runner's pool growths took.\n"
            "# TYPE bellows_kv_pool_growth_seconds_total counter\n");
    for (size_t i = 0; i < n && i < 16; i++)
        add(&b, "bellows_kv_pool_growth_seconds_total{model=\"%s\"} %.6f\n",
            label_escape(loaded[i].name, label, sizeof label), loaded[i].status.growth_ns_total / 1e9);
    *len = b.len;
    return b.s;
}
