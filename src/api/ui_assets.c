/* ui_assets.c -- the embedded files of web/; see ui_assets.h. */
#include "api/ui_assets.h"

#include <string.h>

#include "ui_assets.inc" /* generated: ui_table[], UI_ASSET_PATHS (cmake/embed_web.cmake) */

#define UI_N (sizeof ui_table / sizeof ui_table[0])

const char *const ui_public_paths[] = {"/", "/health", "/ui", "/ui/", UI_ASSET_PATHS NULL};

size_t ui_asset_count(void)
{
    return UI_N;
}

const struct ui_asset *ui_asset_at(size_t i)
{
    return i < UI_N ? &ui_table[i] : NULL;
}

const struct ui_asset *ui_asset_find(const char *path)
{
    if (!path)
        return NULL;
    if (!strcmp(path, "/ui") || !strcmp(path, "/ui/"))
        path = "/ui/index.html";
    for (size_t i = 0; i < UI_N; i++)
        if (!strcmp(ui_table[i].path, path))
            return &ui_table[i];
    return NULL;
}
