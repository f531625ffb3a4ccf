/* caps.c -- capabilities of a chat template and Go-template detection; see caps.h. */
#define _GNU_SOURCE
#include "template/caps.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

static bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static bool contains(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle)) != NULL;
}

/* Case-insensitive: identifiers are lower-case in practice, but Thinking_Mode is one too. */
static bool contains_ci(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!strncasecmp(s + i, needle, k))
            return true;
    return false;
}

/* Thinking tags, in plain text or in a string literal (caps.h DESIGN). */
static void check_markers(const char *s, size_t n, unsigned *caps)
{
    static const char *const markers[] = {"<think", "think>", "[THINK]", "THINKING|>", "|think|", "<thinking>",
                                          "<|channel|>analysis"};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (contains(s, n, markers[i]))
            *caps |= TEMPLATE_CAP_THINKING;
}

/* One identifier of the code: VAR is true for a variable (not `x.name`, not a dict key). */
static void check_ident(const char *s, size_t n, bool var, unsigned *caps)
{
    if (var && n == 5 && !memcmp(s, "tools", 5))
        *caps |= TEMPLATE_CAP_TOOLS;
    if (var && n == 6 && !memcmp(s, "suffix", 6))
        *caps |= TEMPLATE_CAP_INSERT;
    if (var && n == 16 && !memcmp(s, "reasoning_effort", 16))
        *caps |= TEMPLATE_CAP_THINK_EFFORT;
    if (contains_ci(s, n, "think") || contains_ci(s, n, "reason"))
        *caps |= TEMPLATE_CAP_THINKING;
}

/* A string literal of the code: a marker, or a key such as 'reasoning_content'. */
static void check_string(const char *s, size_t n, unsigned *caps)
{
    check_markers(s, n, caps);
    bool ident = n > 0 && is_ident_start(s[0]);
    for (size_t i = 0; ident && i < n; i++)
        ident = is_ident_char(s[i]);
    if (ident)
        check_ident(s, n, false, caps);
}

/* The code of one tag, from just after "{{" / "{%" to its closer ("}}" when CLOSE is '}',
 * "%}" when it is '%'), which counts only outside brackets and strings, as in jinja2's
 * lexer. Returns the position after the closer, or END when the tag is not closed. */
static const char *scan_code(const char *p, const char *end, char close, unsigned *caps)
{
    int depth = 0;
    char prev = 0; /* the last character that was not a space */
    while (p < end) {
        char c = *p;
        if (depth == 0 && c == close && p + 1 < end && p[1] == '}')
            return p + 2;
        if (c == '\'' || c == '"') {
            const char *s = ++p;
            while (p < end && *p != c)
                p += (*p == '\\' && p + 1 < end) ? 2 : 1;
            check_string(s, (size_t)((p < end ? p : end) - s), caps);
            p = p < end ? p + 1 : end;
            prev = 'x';
            continue;
        }
        if (is_ident_start(c)) {
            const char *s = p;
            while (p < end && is_ident_char(*p))
                p++;
            check_ident(s, (size_t)(p - s), prev != '.', caps);
            prev = 'x';
            continue;
        }
        if (c >= '0' && c <= '9') { /* a number: its '.' is not an attribute access */
            while (p < end && (is_ident_char(*p) || *p == '.'))
                p++;
            prev = '0';
            continue;
        }
        if (c == '(' || c == '[' || c == '{')
            depth++;
        else if ((c == ')' || c == ']' || c == '}') && depth > 0)
            depth--;
        if (!is_space(c))
            prev = c;
        p++;
    }
    return end;
}

/* After "{%": is this {% raw %}? Sets *body to just after its "%}". */
static bool raw_block(const char *p, const char *end, const char **body)
{
    if (p < end && (*p == '-' || *p == '+'))
        p++;
    while (p < end && is_space(*p))
        p++;
    if (end - p < 3 || memcmp(p, "raw", 3) || (p + 3 < end && is_ident_char(p[3])))
        return false;
    p += 3;
    while (p < end && is_space(*p))
        p++;
    if (p < end && *p == '-')
        p++;
    if (end - p < 2 || memcmp(p, "%}", 2))
        return false;
    *body = p + 2;
    return true;
}

/* The "{%" that opens {% endraw %} at or after P, or END. */
static const char *find_endraw(const char *p, const char *end)
{
    for (; (p = memmem(p, (size_t)(end - p), "{%", 2)) != NULL; p += 2) {
        const char *q = p + 2;
        if (q < end && (*q == '-' || *q == '+'))
            q++;
        while (q < end && is_space(*q))
            q++;
        if (end - q >= 6 && !memcmp(q, "endraw", 6))
            return p;
    }
    return end;
}

unsigned template_caps(const char *jinja_text)
{
    unsigned caps = 0;
    if (!jinja_text)
        return 0;
    const char *p = jinja_text, *end = jinja_text + strlen(jinja_text);
    while (p < end) {
        const char *q = p;
        while ((q = memchr(q, '{', (size_t)(end - q))) != NULL && q + 1 < end && q[1] != '{' && q[1] != '%' &&
               q[1] != '#')
            q++;
        if (!q || q + 1 >= end) {
            check_markers(p, (size_t)(end - p), &caps);
            break;
        }
        check_markers(p, (size_t)(q - p), &caps);
        const char *body;
        if (q[1] == '#') {
            const char *c = memmem(q + 2, (size_t)(end - q - 2), "#}", 2);
            p = c ? c + 2 : end;
        } else if (q[1] == '%' && raw_block(q + 2, end, &body)) {
            const char *e = find_endraw(body, end);
            check_markers(body, (size_t)(e - body), &caps);
            const char *c = e < end ? memmem(e, (size_t)(end - e), "%}", 2) : NULL;
            p = c ? c + 2 : end;
        } else {
            p = scan_code(q + 2, end, q[1] == '{' ? '}' : '%', &caps);
        }
    }
    return caps;
}

/* Does an action's text (just after "{{") start as only a Go action can? */
static bool go_action(const char *p)
{
    if (*p == '-' && is_space(p[1]))
        p++; /* Go's trim marker "{{- " */
    while (is_space(*p))
        p++;
    if (*p == '.')
        return is_ident_start(p[1]) || is_space(p[1]) || p[1] == '}' || p[1] == '-'; /* .Prompt, dot */
    if (*p == '$' || !strncmp(p, "/*", 2))
        return true;
    static const char *const keywords[] = {"if", "range", "with", "else", "end", "define", "template", "block"};
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
        size_t k = strlen(keywords[i]);
        if (!strncmp(p, keywords[i], k) && (is_space(p[k]) || p[k] == '}' || p[k] == '-'))
            return true; /* not `range(3)` nor `end_token`: Jinja expressions */
    }
    return false;
}

bool template_is_go(const char *text)
{
    if (!text)
        return false;
    const char *hash = strstr(text, "{#");
    if (strstr(text, "{%") || (hash && strstr(hash + 2, "#}")))
        return false; /* a Jinja statement or comment: Go has neither */
    for (const char *p = text; (p = strstr(p, "{{")) != NULL; p += 2)
        if (go_action(p + 2))
            return true;
    return false;
}
