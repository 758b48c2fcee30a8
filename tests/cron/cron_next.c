/*
 * cron_next: reads lines "expr<TAB>zone<TAB>from_ms" on stdin and prints,
 * for each, the next five fire times in ms ("ok t1 t2 t3 t4 t5") or the
 * error ("error JM_EINVAL: reason"). The C side of
 * tests/cron/compare_croniter.py; it uses the public API only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobmgr.h"

#define LINE_MAX_BYTES 4096
#define FIRES 5

int main(void)
{
    char line[LINE_MAX_BYTES];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *tab1 = strchr(line, '\t');
        char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab2) {
            printf("error input: expected expr<TAB>zone<TAB>from_ms\n");
            continue;
        }
        *tab1 = *tab2 = '\0';
        int64_t from = strtoll(tab2 + 1, NULL, 10);
        int64_t out[FIRES];
        int rc = jm_schedule_next(line, tab1 + 1, from, FIRES, out);
        if (rc != JM_OK) {
            printf("error %s: %s\n", jm_err_name(rc), jm_last_error());
            continue;
        }
        printf("ok");
        for (int i = 0; i < FIRES; i++)
            printf(" %" PRId64, out[i]);
        printf("\n");
    }
    return 0;
}
