/* ui_assets.h -- the chat page's files (web/), compiled into the binary.
 *
 * The build turns each file of web/ into bytes in the binary (cmake/embed_web.cmake): the
 * page needs nothing at run time, no file on disk, no CDN. Each asset has its URL under
 * /ui/, its Content-Type, and a strong ETag derived from its bytes (a SHA-256 prefix), so a
 * new build's page replaces the old one in a browser's cache at the next revalidation.
 *
 * Pure data and lookups: no I/O. Everything here is immutable and thread-safe. */
#ifndef BELLOWS_UI_ASSETS_H
#define BELLOWS_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *path;               /* "/ui/app.js" */
    const char *content_type;       /* "text/javascript; charset=utf-8" */
    const unsigned char *data;      /* len bytes, followed by a NUL */
    size_t len;
    const char *etag;               /* with its quotes: "\"0123abcd...\"" */
};

/* The asset at PATH: "/ui" and "/ui/" are index.html; NULL for any other path. */
const struct ui_asset *ui_asset_find(const char *path);

/* The assets in build order (i < ui_asset_count()). */
size_t ui_asset_count(void);
const struct ui_asset *ui_asset_at(size_t i);

/* Every path that needs no API key, NULL-terminated, for http_config.public_paths: the
 * API's own two ("/" and "/health", spec/api.md) and each URL of the page ("/ui", "/ui/"
 * and every asset). The page's files are the same static bytes for everyone and hold no
 * data: a browser cannot send a bearer token when it navigates, so the page loads without
 * the key and then sends it itself on every API call (docs/ui.md). */
extern const char *const ui_public_paths[];

#endif
