/* ui_http.h -- the HTTP decisions of serving the chat page, as pure functions (no I/O):
 * whether a request for "/" comes from a browser that wants the page, and whether a
 * cached copy is still good (If-None-Match against the asset's ETag).
 *
 * Header values are as the client sent them (NULL when absent); nothing is kept. */
#ifndef BELLOWS_UI_HTTP_H
#define BELLOWS_UI_HTTP_H

#include <stdbool.h>

/* True when the Accept header names text/html with a q above 0 (a browser navigating:
 * "text/html,application/xhtml+xml,...;q=0.9"). False for NULL, "*" "/" "*" (curl), and
 * API clients' "application/json": those keep getting "Bellows is running". */
bool ui_accepts_html(const char *accept);

/* True when If-None-Match matches ETAG (RFC 9110 weak comparison, as for GET): "*", or
 * any entry of the comma-separated list equal to ETAG with or without a W/ prefix.
 * ETAG carries its quotes. False for NULL or an empty header. */
bool ui_etag_matches(const char *if_none_match, const char *etag);

#endif
