/*
 * libFuzzer target: jm_job_id_parse on any bytes. An accepted id must be
 * exactly "<two uppercase letters>-<lower-case uuid>" (39 bytes), the type
 * written back must be its first two letters, and a refusal must be
 * JM_EINVAL with a message. Never a crash or an over-read (ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobmgr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parser reads a C string: hand it exactly the input's bytes. */
    char *id = malloc(size + 1);
    if (!id)
        return 0;
    memcpy(id, data, size);
    id[size] = '\0';
    char type[3] = "??";
    int rc = jm_job_id_parse(id, type);
    if (rc == JM_OK) {
        if (strlen(id) != JM_JOB_ID_SIZE - 1 || id[2] != '-' || type[0] != id[0] ||
            type[1] != id[1] || type[2] != '\0' || type[0] < 'A' || type[0] > 'Z' ||
            type[1] < 'A' || type[1] > 'Z')
            abort();
        for (int i = 0; i < 36; i++) {
            char c = id[3 + i];
            int dash = i == 8 || i == 13 || i == 18 || i == 23;
            if (dash ? c != '-' : !lower_hex(c))
                abort();
        }
        /* Without a type buffer the answer is the same. */
        if (jm_job_id_parse(id, NULL) != JM_OK)
            abort();
    } else if (rc != JM_EINVAL || !jm_last_error()[0]) {
        abort();
    }
    free(id);
    return 0;
}
