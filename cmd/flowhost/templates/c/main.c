/*
 * @NAME@: a flowhost task library in C, against extism.h (the Extism
 * guest ABI, declared by hand: no SDK needed).
 *
 * Every task is an exported function of no arguments returning int32_t
 * (TASK(name)): it reads its input, a JSON object with one member per
 * declared input, writes its output as JSON, and returns 0, or sets an
 * error and returns 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extism.h"

/*
 * The string member key of the input object, copied to out. A deliberately
 * small reader: no escapes, no nesting. 0: found, 1: absent, -1: not a
 * plain string (flowhost's plugins/examples/stats-c/stats.c has a real
 * JSON reader).
 */
static int get_string(const char *in, const char *key, char *out, size_t size) {
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *p = strstr(in, quoted);
    if (p == NULL)
        return 1;
    p += strlen(quoted);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':')
        p++;
    if (*p++ != '"')
        return -1;
    const char *end = strchr(p, '"');
    if (end == NULL || (size_t)(end - p) >= size || memchr(p, '\\', (size_t)(end - p)))
        return -1;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return 0;
}

TASK(greet) {
    uint64_t len;
    char *in = extism_input(&len); /* a NUL-terminated copy of the input */
    if (in == NULL)
        return extism_error("greet: out of memory");
    char name[256], greeting[64] = "Hello", msg[400];
    int rn = get_string(in, "name", name, sizeof name);
    int rg = get_string(in, "greeting", greeting, sizeof greeting);
    free(in);
    if (rn != 0 || name[0] == '\0')
        return extism_error("greet: input \"name\" must be a string");
    if (rg < 0)
        return extism_error("greet: input \"greeting\" must be a string");
    /* One output: the output is that value itself, here a JSON string. */
    int n = snprintf(msg, sizeof msg, "\"%s, %s!\"", greeting, name);
    extism_output(msg, (uint64_t)n);
    return 0;
}
