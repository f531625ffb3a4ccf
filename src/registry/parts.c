/* parts.c -- how a blob is split into Range parts, and the file that records their
 * progress (see registry.h). Pure: no I/O. */
#include "registry/registry.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define PARTS_MAGIC "bellows-parts 1"

int registry_plan_parts(uint64_t total, uint64_t part_min, int max_parts, struct registry_part *out)
{
    if (total == 0)
        return 0;
    if (part_min == 0)
        part_min = REGISTRY_PART_MIN;
    if (max_parts <= 0 || max_parts > REGISTRY_MAX_PARTS)
        max_parts = REGISTRY_MAX_PARTS;
    uint64_t n = total / part_min; /* every part at least part_min */
    if (n < 1)
        n = 1;
    if (n > (uint64_t)max_parts)
        n = (uint64_t)max_parts;
    uint64_t base = total / n, extra = total % n, offset = 0;
    for (uint64_t i = 0; i < n; i++) {
        out[i].offset = offset;
        out[i].size = base + (i < extra ? 1 : 0);
        out[i].completed = 0;
        offset += out[i].size;
    }
    return (int)n;
}

size_t registry_parts_format(const char *digest, uint64_t total, const struct registry_part *parts, int n,
                             char *buf, size_t len)
{
    size_t used = 0;
    int k = snprintf(buf, len, PARTS_MAGIC "\ndigest %s\ntotal %" PRIu64 "\n", digest, total);
    if (k < 0 || (size_t)k >= len)
        return 0;
    used = (size_t)k;
    for (int i = 0; i < n; i++) {
        k = snprintf(buf + used, len - used, "part %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", parts[i].offset,
                     parts[i].size, parts[i].completed);
        if (k < 0 || (size_t)k >= len - used)
            return 0;
        used += (size_t)k;
    }
    return used;
}

/* The next line of *p (without '\n') into line; false at the end or when it is too long. */
static bool next_line(const char **p, char *line, size_t len)
{
    const char *s = *p;
    if (!*s)
        return false;
    const char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s) : strlen(s);
    if (n >= len)
        return false;
    memcpy(line, s, n);
    line[n] = '\0';
    *p = nl ? nl + 1 : s + n;
    return true;
}

int registry_parts_parse(const char *text, const char *digest, uint64_t total, struct registry_part *out, int max)
{
    char line[256], want[200];
    const char *p = text;
    if (!text || !next_line(&p, line, sizeof line) || strcmp(line, PARTS_MAGIC))
        return -1;
    snprintf(want, sizeof want, "digest %s", digest);
    if (!next_line(&p, line, sizeof line) || strcmp(line, want))
        return -1;
    uint64_t t;
    char tail;
    if (!next_line(&p, line, sizeof line) || sscanf(line, "total %" SCNu64 "%c", &t, &tail) != 1 || t != total)
        return -1;
    int n = 0;
    uint64_t next_offset = 0;
    while (next_line(&p, line, sizeof line)) {
        struct registry_part part;
        if (n >= max ||
            sscanf(line, "part %" SCNu64 " %" SCNu64 " %" SCNu64 "%c", &part.offset, &part.size, &part.completed,
                   &tail) != 3)
            return -1;
        if (part.offset != next_offset || part.size == 0 || part.size > total - part.offset ||
            part.completed > part.size)
            return -1;
        next_offset += part.size;
        out[n++] = part;
    }
    if (*p || next_offset != total)
        return -1;
    return n;
}
