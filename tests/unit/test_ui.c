/* test_ui.c -- unit tests for the chat page's pure parts: the embedded files (ui_assets.h)
 * and the HTTP decisions of serving them (ui_http.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "api/ui_assets.h"
#include "api/ui_http.h"

static void accepts_html(void **state)
{
    (void)state;
    /* browsers */
    assert_true(ui_accepts_html("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"));
    assert_true(ui_accepts_html("text/html"));
    assert_true(ui_accepts_html("application/json, TEXT/HTML;q=0.5"));
    assert_true(ui_accepts_html(" text/html ; charset=utf-8"));
    /* API clients and tools */
    assert_false(ui_accepts_html(NULL));
    assert_false(ui_accepts_html(""));
    assert_false(ui_accepts_html("*/*"));
    assert_false(ui_accepts_html("application/json"));
    assert_false(ui_accepts_html("text/*"));
    assert_false(ui_accepts_html("text/htmlx"));
    assert_false(ui_accepts_html("text/html;q=0"));
    assert_false(ui_accepts_html("text/html; level=1 ;q=0.0, application/json"));
}

static void etag_matches(void **state)
{
    (void)state;
    const char *tag = "\"abc123\"";
    assert_true(ui_etag_matches("\"abc123\"", tag));
    assert_true(ui_etag_matches("W/\"abc123\"", tag));
    assert_true(ui_etag_matches("\"old\", \"abc123\"", tag));
    assert_true(ui_etag_matches("\"old\",W/\"abc123\" ", tag));
    assert_true(ui_etag_matches("*", tag));
    assert_false(ui_etag_matches(NULL, tag));
    assert_false(ui_etag_matches("", tag));
    assert_false(ui_etag_matches("\"abc12\"", tag));
    assert_false(ui_etag_matches("\"abc1234\"", tag));
    assert_false(ui_etag_matches("abc123", tag));
    assert_false(ui_etag_matches("\"old\", \"other\"", tag));
}

static void assets(void **state)
{
    (void)state;
    assert_true(ui_asset_count() >= 3);
    const struct ui_asset *index = ui_asset_find("/ui");
    assert_non_null(index);
    assert_ptr_equal(index, ui_asset_find("/ui/"));
    assert_ptr_equal(index, ui_asset_find("/ui/index.html"));
    assert_string_equal(index->content_type, "text/html; charset=utf-8");
    assert_non_null(strstr((const char *)index->data, "<html"));
    assert_int_equal(index->data[index->len], '\0');
    assert_string_equal(ui_asset_find("/ui/app.js")->content_type, "text/javascript; charset=utf-8");
    assert_string_equal(ui_asset_find("/ui/style.css")->content_type, "text/css; charset=utf-8");
    assert_null(ui_asset_find("/ui/nope.js"));
    assert_null(ui_asset_find("/ui/../ui/app.js"));
    assert_null(ui_asset_find("/app.js"));
    assert_null(ui_asset_find(NULL));
    assert_null(ui_asset_at(ui_asset_count()));
    for (size_t i = 0; i < ui_asset_count(); i++) {
        const struct ui_asset *a = ui_asset_at(i);
        assert_int_equal(strncmp(a->path, "/ui/", 4), 0);
        assert_int_equal(strlen(a->etag), 22); /* 20 hex digits in quotes */
        assert_true(a->etag[0] == '"' && a->etag[21] == '"');
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(a->etag, ui_asset_at(j)->etag);
        /* every asset is a public path, and so are the API's two */
        bool listed = false;
        for (const char *const *p = ui_public_paths; *p; p++)
            listed |= !strcmp(*p, a->path);
        assert_true(listed);
    }
    assert_string_equal(ui_public_paths[0], "/");
    assert_string_equal(ui_public_paths[1], "/health");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_html),
        cmocka_unit_test(etag_matches),
        cmocka_unit_test(assets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
