/* modelfile.c -- see modelfile.h. */
#define _GNU_SOURCE
#include "cli/modelfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- parameters ------------------------------------------------------------------------- */

enum ptype { P_INT, P_FLOAT, P_BOOL, P_STOP, P_STRING };

/* Ollama's options (api/types.go), with their types. */
static const struct {
    const char *key;
    enum ptype type;
} params_known[] = {
    {"num_keep", P_INT},         {"seed", P_INT},           {"num_predict", P_INT},        {"top_k", P_INT},
    {"top_p", P_FLOAT},          {"min_p", P_FLOAT},        {"typical_p", P_FLOAT},        {"repeat_last_n", P_INT},
    {"temperature", P_FLOAT},    {"repeat_penalty", P_FLOAT}, {"presence_penalty", P_FLOAT},
    {"frequency_penalty", P_FLOAT}, {"mirostat", P_INT},    {"mirostat_tau", P_FLOAT},     {"mirostat_eta", P_FLOAT},
    {"tfs_z", P_FLOAT},          {"penalize_newline", P_BOOL}, {"stop", P_STOP},           {"numa", P_BOOL},
    {"num_ctx", P_INT},          {"num_batch", P_INT},      {"num_gpu", P_INT},            {"main_gpu", P_INT},
    {"low_vram", P_BOOL},        {"f16_kv", P_BOOL},        {"logits_all", P_BOOL},        {"vocab_only", P_BOOL},
    {"use_mmap", P_BOOL},        {"use_mlock", P_BOOL},     {"num_thread", P_INT},
};

/* "text" -> text with \" \\ \n \t unescaped; anything else is copied. Caller frees. */
static char *unquote(const char *v)
{
    size_t n = strlen(v);
    if (n < 2 || v[0] != '"' || v[n - 1] != '"')
        return strdup(v);
    char *out = malloc(n);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        if (v[i] == '\\' && i + 2 < n) {
            char e = v[++i];
            out[k++] = e == 'n' ? '\n' : e == 't' ? '\t' : e;
        } else {
            out[k++] = v[i];
        }
    }
    out[k] = '\0';
    return out;
}

int modelfile_param_set(json_t *params, const char *key, const char *value, struct bw_err *err)
{
    enum ptype type = P_STRING;
    bool known = false;
    for (size_t i = 0; i < sizeof params_known / sizeof params_known[0]; i++)
        if (!strcmp(key, params_known[i].key)) {
            type = params_known[i].type;
            known = true;
        }
    if (!known)
        return bw_errf(err, BW_EINVAL, "unknown parameter '%s'", key);
    char *v = unquote(value);
    if (!v)
        return bw_errf(err, BW_ENOMEM, "out of memory");
    json_t *j = NULL;
    char *end;
    errno = 0;
    switch (type) {
    case P_INT: {
        long long x = strtoll(v, &end, 10);
        if (*v && !*end && !errno)
            j = json_integer(x);
        else
            bw_errf(err, BW_EINVAL, "parameter '%s' must be an integer, not '%s'", key, v);
        break;
    }
    case P_FLOAT: {
        double x = strtod(v, &end);
        if (*v && !*end && !errno)
            j = json_real(x);
        else
            bw_errf(err, BW_EINVAL, "parameter '%s' must be a number, not '%s'", key, v);
        break;
    }
    case P_BOOL:
        if (!strcasecmp(v, "true") || !strcmp(v, "1"))
            j = json_true();
        else if (!strcasecmp(v, "false") || !strcmp(v, "0"))
            j = json_false();
        else
            bw_errf(err, BW_EINVAL, "parameter '%s' must be true or false, not '%s'", key, v);
        break;
    case P_STOP:
    case P_STRING:
        if (!*v)
            bw_errf(err, BW_EINVAL, "parameter '%s' needs a value", key);
        else
            j = json_string(v);
        break;
    }
    free(v);
    if (!j)
        return err ? err->code : BW_EINVAL;
    if (type == P_STOP) {
        json_t *arr = json_object_get(params, "stop");
        if (!json_is_array(arr)) {
            arr = json_array();
            json_object_set_new(params, "stop", arr);
        }
        json_array_append_new(arr, j);
    } else {
        json_object_set_new(params, key, j);
    }
    return BW_OK;
}

/* ---- the parser ------------------------------------------------------------------------- */

struct parser {
    const char *s, *end;
    int line;
    struct bw_err *err;
};

static bool at_end(const struct parser *p) { return p->s >= p->end; }

/* Skips spaces and tabs (not newlines). */
static void skip_blank(struct parser *p)
{
    while (!at_end(p) && (*p->s == ' ' || *p->s == '\t'))
        p->s++;
}

/* The rest of the line, trimmed; advances past the newline. */
static char *rest_of_line(struct parser *p)
{
    const char *start = p->s;
    while (!at_end(p) && *p->s != '\n')
        p->s++;
    const char *e = p->s;
    if (!at_end(p)) {
        p->s++;
        p->line++;
    }
    while (e > start && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    return strndup(start, (size_t)(e - start));
}

/* A value: """multi-line""", "quoted", or the rest of the line. Caller frees. NULL with
 * err set on a syntax error. */
static char *value(struct parser *p, const char *instr)
{
    skip_blank(p);
    if (p->end - p->s >= 3 && !strncmp(p->s, "\"\"\"", 3)) {
        int start_line = p->line;
        p->s += 3;
        const char *start = p->s;
        while (p->end - p->s >= 3 && strncmp(p->s, "\"\"\"", 3) != 0) {
            if (*p->s == '\n')
                p->line++;
            p->s++;
        }
        if (p->end - p->s < 3) {
            bw_errf(p->err, BW_EINVAL, "line %d: %s: the \"\"\" is never closed", start_line, instr);
            return NULL;
        }
        char *v = strndup(start, (size_t)(p->s - start));
        p->s += 3;
        char *tail = rest_of_line(p);
        bool junk = tail && *tail;
        free(tail);
        if (junk) {
            free(v);
            bw_errf(p->err, BW_EINVAL, "line %d: %s: unexpected text after the closing \"\"\"", p->line - 1, instr);
            return NULL;
        }
        return v;
    }
    char *raw = rest_of_line(p);
    if (!raw)
        return NULL;
    char *v = raw[0] == '"' ? unquote(raw) : strdup(raw);
    free(raw);
    return v;
}

int modelfile_parse(const char *text, size_t len, struct modelfile *out, struct bw_err *err)
{
    struct modelfile mf = {.parameters = json_object(), .messages = json_array()};
    struct parser p = {.s = text, .end = text + len, .line = 1, .err = err};
    int rc = BW_OK;
    if (!mf.parameters || !mf.messages) {
        rc = bw_errf(err, BW_ENOMEM, "out of memory");
        goto fail;
    }
    while (!at_end(&p)) {
        skip_blank(&p);
        if (at_end(&p))
            break;
        if (*p.s == '\n' || *p.s == '\r' || *p.s == '#') {
            free(rest_of_line(&p));
            continue;
        }
        const char *w = p.s;
        while (!at_end(&p) && !isspace((unsigned char)*p.s))
            p.s++;
        char instr[32];
        size_t wn = (size_t)(p.s - w);
        snprintf(instr, sizeof instr, "%.*s", (int)(wn < 31 ? wn : 31), w);
        for (char *c = instr; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        int line = p.line;
        if (!strcmp(instr, "PARAMETER")) {
            skip_blank(&p);
            const char *k = p.s;
            while (!at_end(&p) && !isspace((unsigned char)*p.s))
                p.s++;
            char *key = strndup(k, (size_t)(p.s - k));
            char *v = value(&p, "PARAMETER");
            if (!key || !v || !*key || !*v) {
                if (key && v)
                    bw_errf(err, BW_EINVAL, "line %d: PARAMETER needs a name and a value (PARAMETER temperature 0.7)",
                            line);
                free(key);
                free(v);
                rc = BW_EINVAL;
                goto fail;
            }
            for (char *c = key; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            struct bw_err perr;
            rc = modelfile_param_set(mf.parameters, key, v, &perr);
            free(key);
            free(v);
            if (rc) {
                bw_errf(err, rc, "line %d: %s", line, perr.msg);
                goto fail;
            }
            continue;
        }
        if (!strcmp(instr, "MESSAGE")) {
            skip_blank(&p);
            const char *r = p.s;
            while (!at_end(&p) && !isspace((unsigned char)*p.s))
                p.s++;
            char role[32];
            snprintf(role, sizeof role, "%.*s", (int)((size_t)(p.s - r) < 31 ? (size_t)(p.s - r) : 31), r);
            for (char *c = role; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) {
                rc = bw_errf(err, BW_EINVAL, "line %d: MESSAGE role '%s' is not one of system, user, assistant",
                             line, role);
                goto fail;
            }
            char *v = value(&p, "MESSAGE");
            if (!v) {
                rc = BW_EINVAL;
                goto fail;
            }
            json_array_append_new(mf.messages, json_pack("{s:s, s:s}", "role", role, "content", v));
            free(v);
            continue;
        }
        char **slot = !strcmp(instr, "FROM")       ? &mf.from
                      : !strcmp(instr, "SYSTEM")   ? &mf.system
                      : !strcmp(instr, "TEMPLATE") ? &mf.template_
                      : !strcmp(instr, "LICENSE")  ? &mf.license
                                                   : NULL;
        if (!slot) {
            if (!strcmp(instr, "ADAPTER"))
                rc = bw_errf(err, BW_EINVAL, "line %d: ADAPTER (LoRA) is not supported by Bellows yet", line);
            else
                rc = bw_errf(err, BW_EINVAL,
                             "line %d: unknown instruction '%s' (FROM, PARAMETER, SYSTEM, TEMPLATE, LICENSE, "
                             "MESSAGE)",
                             line, instr);
            goto fail;
        }
        char *v = value(&p, instr);
        if (!v) {
            rc = BW_EINVAL;
            goto fail;
        }
        if (slot == &mf.license && mf.license) {
            /* several LICENSE instructions: keep them all */
            char *joined;
            if (asprintf(&joined, "%s\n\n%s", mf.license, v) < 0) {
                free(v);
                rc = bw_errf(err, BW_ENOMEM, "out of memory");
                goto fail;
            }
            free(v);
            v = joined;
        }
        if (slot == &mf.from && !*v) {
            free(v);
            rc = bw_errf(err, BW_EINVAL, "line %d: FROM needs a GGUF file or a model name", line);
            goto fail;
        }
        free(*slot); /* a later instruction wins, as in Ollama */
        *slot = v;
    }
    if (!mf.from) {
        rc = bw_errf(err, BW_EINVAL, "no FROM line: a Modelfile starts from a GGUF file or a model (FROM ./model.gguf)");
        goto fail;
    }
    *out = mf;
    return BW_OK;
fail:
    modelfile_fini(&mf);
    return rc;
}

void modelfile_fini(struct modelfile *mf)
{
    free(mf->from);
    free(mf->system);
    free(mf->template_);
    free(mf->license);
    json_decref(mf->parameters);
    json_decref(mf->messages);
    memset(mf, 0, sizeof *mf);
}
