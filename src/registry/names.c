/* names.c -- names to pull and the registry URLs they map to (see registry.h). Pure. */
#include "registry/registry.h"

#include <stdio.h>
#include <string.h>

int registry_ref_parse(const char *s, bool insecure, struct registry_ref *out, struct bw_err *err)
{
    const char *scheme = NULL, *rest = s ? s : "";
    if (!strncmp(rest, "https://", 8))
        scheme = "https", rest += 8;
    else if (!strncmp(rest, "http://", 7))
        scheme = "http", rest += 7;
    struct registry_ref r;
    int rc = names_parse(rest, &r.name, err);
    if (rc)
        return rc;
    if (scheme && !strcmp(scheme, "http") && !insecure)
        return bw_errf(err, BW_EINVAL,
                       "insecure protocol http: pull with insecure set (bellows pull --insecure) to allow plain HTTP");
    snprintf(r.scheme, sizeof r.scheme, "%s", scheme ? scheme : insecure ? "http" : "https");
    snprintf(r.base, sizeof r.base, "%s://%s", r.scheme, r.name.host);
    snprintf(r.repo, sizeof r.repo, "%s/%s", r.name.ns, r.name.model);
    *out = r;
    return BW_OK;
}

void registry_manifest_url(const struct registry_ref *r, char *buf)
{
    snprintf(buf, REGISTRY_URL_MAX, "%s/v2/%s/manifests/%s", r->base, r->repo, r->name.tag);
}

void registry_blob_url(const struct registry_ref *r, const char *digest, char *buf)
{
    snprintf(buf, REGISTRY_URL_MAX, "%s/v2/%s/blobs/%s", r->base, r->repo, digest);
}
