/* api_ui.c -- serving the embedded chat page; see api_ui.h. */
#include "api/api_ui.h"

#include <string.h>

#include "api/api_int.h"
#include "api/ui_assets.h"
#include "api/ui_http.h"

/* Only this origin: the page loads nothing from elsewhere (no CDN) and talks only to this
 * server; no inline script, so an answer that slipped past the renderer's escaping still
 * could not run. The favicon is a data: URL (index.html), so img-src allows data:. */
#define UI_CSP                                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "          \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

void api__ui_serve(struct api *a, struct http_request *req)
{
    const struct ui_asset *as = ui_asset_find(req->path);
    if (!as) {
        api__reply_error(req, 404, "404 page not found");
        metrics_request(&a->metrics, "/ui", 404);
        return;
    }
    const char *const headers[] = {"ETag",
                                   as->etag,
                                   "Cache-Control",
                                   "no-cache",
                                   "X-Content-Type-Options",
                                   "nosniff",
                                   "Content-Security-Policy",
                                   UI_CSP,
                                   "Referrer-Policy",
                                   "no-referrer",
                                   NULL};
    if (ui_etag_matches(http_header(req, "If-None-Match"), as->etag)) {
        http_respond(req, 304, NULL, NULL, 0, headers);
        metrics_request(&a->metrics, "/ui", 304);
        return;
    }
    http_respond(req, 200, as->content_type, (const char *)as->data, as->len, headers);
    metrics_request(&a->metrics, "/ui", 200);
}

bool api__ui_redirect(struct api *a, struct http_request *req)
{
    if (!ui_accepts_html(http_header(req, "Accept")))
        return false;
    /* 303: "see the page over there", and a HEAD or GET stays one. Vary, so that a cache
     * does not hand the redirect to an API client (or the text to a browser). */
    const char *const headers[] = {"Location", "/ui", "Vary", "Accept", NULL};
    http_respond(req, 303, "text/plain; charset=utf-8", "See /ui", 7, headers);
    metrics_request(&a->metrics, "/", 303);
    return true;
}
