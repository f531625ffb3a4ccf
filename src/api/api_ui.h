/* api_ui.h -- the chat page's routes (docs/ui.md): GET/HEAD /ui, /ui/ and /ui/<asset>, and
 * the redirect of a browser asking for "/".
 *
 * They pass the same checks as every API route before they get here (http.h: Host guard,
 * Origin list); the page's URLs are public paths (ui_public_paths, ui_assets.h) because a
 * browser cannot send the API key when it navigates: the page's scripts send it on each API
 * call. Called on HTTP connection threads; nothing here is mutable. */
#ifndef BELLOWS_API_UI_H
#define BELLOWS_API_UI_H

#include <stdbool.h>

#include "server/http.h"

struct api;

/* Answers one of the page's files: 200 with its bytes, Content-Type, ETag and
 * "Cache-Control: no-cache" (the browser revalidates each load: a new build is picked up at
 * once), 304 when If-None-Match matches, 404 for an unknown /ui/ path. Every answer carries
 * a Content-Security-Policy that allows only this origin's scripts, styles and API. */
void api__ui_serve(struct api *a, struct http_request *req);

/* For "/": when the client is a browser (Accept names text/html), answers 303 to /ui and
 * returns true; otherwise returns false and answers nothing (API clients that check "/"
 * keep their "Bellows is running"). */
bool api__ui_redirect(struct api *a, struct http_request *req);

#endif
