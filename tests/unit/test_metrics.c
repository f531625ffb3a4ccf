/* test_metrics.c -- the request counters' route labels: a label past the table's room is
 * counted as "other", never under another route's name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"

static int find(const struct metrics *m, const char *label)
{
    for (int i = 0; i < METRICS_ROUTES && m->route[i]; i++)
        if (!strcmp(m->route[i], label))
            return i;
    return -1;
}

static void labels_past_the_table_are_counted_as_other(void **state)
{
    (void)state;
    struct metrics m;
    metrics_init(&m);
    char label[32];
    for (int i = 0; i < METRICS_ROUTES + 10; i++) {
        snprintf(label, sizeof label, "/r%d", i);
        metrics_request(&m, label, 200);
    }
    metrics_request(&m, "/r0", 404);
    int first = find(&m, "/r0");
    assert_true(first >= 0);
    assert_true(atomic_load(&m.by_status[first][1]) == 1); /* one 2xx */
    assert_true(atomic_load(&m.by_status[first][3]) == 1); /* one 4xx */
    int last_named = find(&m, "/r46");
    assert_true(last_named == METRICS_ROUTES - 2);
    assert_true(atomic_load(&m.by_status[last_named][1]) == 1); /* not the overflow's count */
    assert_true(find(&m, "/r47") < 0);
    int other = find(&m, "other");
    assert_true(other == METRICS_ROUTES - 1);
    assert_true(atomic_load(&m.by_status[other][1]) == 11); /* /r47 … /r57 */
    metrics_fini(&m);
}

static void the_tables_own_other_label_stays_one_series(void **state)
{
    (void)state;
    struct metrics m;
    metrics_init(&m);
    metrics_request(&m, "other", 404); /* the route table's own label for unknown paths */
    char label[32];
    for (int i = 0; i < METRICS_ROUTES + 3; i++) {
        snprintf(label, sizeof label, "/r%d", i);
        metrics_request(&m, label, 200);
    }
    int other = find(&m, "other");
    assert_true(other == 0);
    assert_true(atomic_load(&m.by_status[0][3]) == 1);
    assert_true(atomic_load(&m.by_status[0][1]) == 5); /* 51 labels; 46 fit between "other" and the last slot */
    assert_true(m.route[METRICS_ROUTES - 1] == NULL); /* no second "other" series */
    metrics_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(labels_past_the_table_are_counted_as_other),
        cmocka_unit_test(the_tables_own_other_label_stays_one_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
