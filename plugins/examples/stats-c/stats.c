/*
 * stats: a flowhost task library of numbers and statistics, in C.
 *
 * Build (see build.sh):
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor \
 *         -o stats.wasm stats.c
 *
 * Each task reads its input, a JSON object with one member per declared
 * input, with the small JSON reader below: it checks the whole input is
 * well-formed JSON, finds the members it needs (keys are compared as
 * written, so a key spelled with escapes is not recognised) and reads
 * numbers and arrays of numbers. One output is written as a bare JSON
 * value, several as an object. Bad input fails the task with a message
 * naming the task and the input.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extism.h"

/* ------------------------------------------------------------------------
 * A JSON reader for what the tasks need.
 */

typedef struct {
    const char *p, *end;
} Cur;

enum { MAX_DEPTH = 64 };

static void skip_ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static int skip_string(Cur *c) {
    if (c->p >= c->end || *c->p != '"')
        return -1;
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            return 0;
        if (ch < 0x20)
            return -1;
        if (ch == '\\') {
            if (c->p >= c->end)
                return -1;
            char e = *c->p++;
            if (e == 'u') {
                for (int i = 0; i < 4; i++, c->p++) {
                    if (c->p >= c->end)
                        return -1;
                    char h = *c->p;
                    if (!is_digit(h) && !((h | 0x20) >= 'a' && (h | 0x20) <= 'f'))
                        return -1;
                }
            } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return -1;
            }
        }
    }
    return -1;
}

/* Skips a JSON number, checking its grammar. */
static int scan_number(Cur *c) {
    const char *q = c->p;
    if (q < c->end && *q == '-')
        q++;
    if (q >= c->end)
        return -1;
    if (*q == '0') {
        q++;
    } else if (*q >= '1' && *q <= '9') {
        while (q < c->end && is_digit(*q))
            q++;
    } else {
        return -1;
    }
    if (q < c->end && *q == '.') {
        q++;
        if (q >= c->end || !is_digit(*q))
            return -1;
        while (q < c->end && is_digit(*q))
            q++;
    }
    if (q < c->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < c->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= c->end || !is_digit(*q))
            return -1;
        while (q < c->end && is_digit(*q))
            q++;
    }
    c->p = q;
    return 0;
}

/* Reads a JSON number into *out; -1 if it is not one or no finite double (1e999). */
static int read_number(Cur *c, double *out) {
    Cur n = *c;
    if (scan_number(&n) != 0)
        return -1;
    char tmp[64];
    size_t len = (size_t)(n.p - c->p);
    double v;
    if (len < sizeof tmp) {
        memcpy(tmp, c->p, len);
        tmp[len] = '\0';
        v = strtod(tmp, NULL);
    } else { /* a very long number: the input is NUL-terminated, and strtod stops where the grammar did */
        v = strtod(c->p, NULL);
    }
    if (!isfinite(v))
        return -1;
    *out = v;
    *c = n;
    return 0;
}

static int skip_literal(Cur *c, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return -1;
    c->p += n;
    return 0;
}

/* Skips one JSON value of any kind, checking it is well-formed. */
static int skip_value(Cur *c, int depth) {
    if (depth > MAX_DEPTH)
        return -1;
    skip_ws(c);
    if (c->p >= c->end)
        return -1;
    switch (*c->p) {
    case '"':
        return skip_string(c);
    case 't':
        return skip_literal(c, "true");
    case 'f':
        return skip_literal(c, "false");
    case 'n':
        return skip_literal(c, "null");
    case '[':
    case '{': {
        char close = *c->p == '[' ? ']' : '}';
        int object = close == '}';
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 0;
        }
        for (;;) {
            if (object) {
                skip_ws(c);
                if (skip_string(c) != 0)
                    return -1;
                skip_ws(c);
                if (c->p >= c->end || *c->p != ':')
                    return -1;
                c->p++;
            }
            if (skip_value(c, depth + 1) != 0)
                return -1;
            skip_ws(c);
            if (c->p >= c->end)
                return -1;
            if (*c->p == ',') {
                c->p++;
                continue;
            }
            if (*c->p == close) {
                c->p++;
                return 0;
            }
            return -1;
        }
    }
    default:
        return scan_number(c);
    }
}

/* The task's input: the text, and the values of its members. */
typedef struct {
    char *buf;
    Cur all;
} Input;

/* Reads the input and checks it is one well-formed JSON object. */
static int read_input(Input *in) {
    uint64_t n;
    in->buf = extism_input(&n);
    if (in->buf == NULL)
        return -1;
    in->all.p = in->buf;
    in->all.end = in->buf + n;
    Cur c = in->all;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        return -1;
    if (skip_value(&c, 0) != 0)
        return -1;
    skip_ws(&c);
    return c.p == c.end ? 0 : -1;
}

/*
 * Finds member key of the (already checked) input object and sets *val to
 * its value. Returns 0 when found, -1 when absent.
 */
static int member(const Input *in, const char *key, Cur *val) {
    Cur c = in->all;
    size_t klen = strlen(key);
    skip_ws(&c);
    c.p++; /* '{' */
    for (;;) {
        skip_ws(&c);
        if (*c.p == '}')
            return -1;
        const char *k = c.p + 1;
        skip_string(&c);
        int match = (size_t)(c.p - 1 - k) == klen && memcmp(k, key, klen) == 0;
        skip_ws(&c);
        c.p++; /* ':' */
        skip_ws(&c);
        if (match) {
            *val = c;
            return 0;
        }
        skip_value(&c, 0);
        skip_ws(&c);
        if (*c.p == ',')
            c.p++;
    }
}

/* Calls f on each number of the JSON array at v. -1 if v is not an array of numbers. */
static int each_number(Cur v, void (*f)(double, void *), void *ctx) {
    if (v.p >= v.end || *v.p != '[')
        return -1;
    v.p++;
    skip_ws(&v);
    if (*v.p == ']')
        return 0;
    for (;;) {
        double x;
        skip_ws(&v);
        if (read_number(&v, &x) != 0)
            return -1;
        f(x, ctx);
        skip_ws(&v);
        if (*v.p == ']')
            return 0;
        v.p++; /* ',' (the input was checked) */
    }
}

/* ------------------------------------------------------------------------
 * Output.
 */

/* Formats v as the shortest JSON number that reads back as v. */
static void fmt_num(char *buf, size_t size, double v) {
    if (v == 0)
        v = 0; /* no "-0" */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static int32_t out_num(double v) {
    char buf[40];
    fmt_num(buf, sizeof buf, v);
    extism_output(buf, strlen(buf));
    return 0;
}

static int32_t fail(Input *in, const char *fmt, const char *task, const char *name) {
    char msg[200];
    snprintf(msg, sizeof msg, fmt, task, name);
    free(in->buf);
    return extism_error(msg);
}

#define BAD_INPUT "%s: the input must be a JSON object with one member per input%s"
#define MISSING "%s: missing input '%s'"

/* ------------------------------------------------------------------------
 * Tasks.
 */

/* Running statistics (Welford). */
typedef struct {
    double n, mean, m2, sum, min, max;
} Acc;

static void acc_add(double x, void *p) {
    Acc *a = (Acc *)p;
    a->n++;
    a->sum += x;
    double d = x - a->mean;
    a->mean += d / a->n;
    a->m2 += d * (x - a->mean);
    if (a->n == 1 || x < a->min)
        a->min = x;
    if (a->n == 1 || x > a->max)
        a->max = x;
}

/*
 * Reads input 'values' into a. Returns 0, or the failure code after setting
 * the error (need_one: the array must not be empty).
 */
static int32_t read_values(Input *in, const char *task, int need_one, Acc *a) {
    Cur v;
    memset(a, 0, sizeof *a);
    if (read_input(in) != 0)
        return fail(in, BAD_INPUT, task, "");
    if (member(in, "values", &v) != 0)
        return fail(in, MISSING, task, "values");
    if (each_number(v, acc_add, a) != 0 || (need_one && a->n == 0))
        return fail(in,
                    need_one ? "%s: input '%s' must be a non-empty array of numbers"
                             : "%s: input '%s' must be an array of numbers (finite doubles)",
                    task, "values");
    return 0;
}

/* Reads number input name into *x. */
static int32_t read_x(Input *in, const char *task, const char *name, double *x) {
    Cur v;
    if (read_input(in) != 0)
        return fail(in, BAD_INPUT, task, "");
    if (member(in, name, &v) != 0)
        return fail(in, MISSING, task, name);
    if (read_number(&v, x) != 0)
        return fail(in, "%s: input '%s' must be a number (a finite double)", task, name);
    return 0;
}

/* sum: {values} -> sum. The sum of an empty array is 0. */
TASK(sum) {
    Input in;
    Acc a;
    int32_t rc = read_values(&in, "sum", 0, &a);
    if (rc != 0)
        return rc;
    free(in.buf);
    if (!isfinite(a.sum))
        return extism_error("sum: the sum overflows a double");
    return out_num(a.sum);
}

/* mean: {values} -> average: the arithmetic mean. */
TASK(mean) {
    Input in;
    Acc a;
    int32_t rc = read_values(&in, "mean", 1, &a);
    if (rc != 0)
        return rc;
    free(in.buf);
    return out_num(a.mean);
}

/* minmax: {values} -> {min, max}. */
TASK(minmax) {
    Input in;
    Acc a;
    int32_t rc = read_values(&in, "minmax", 1, &a);
    if (rc != 0)
        return rc;
    free(in.buf);
    char lo[40], hi[40], out[100];
    fmt_num(lo, sizeof lo, a.min);
    fmt_num(hi, sizeof hi, a.max);
    int n = snprintf(out, sizeof out, "{\"min\":%s,\"max\":%s}", lo, hi);
    extism_output(out, (uint64_t)n);
    return 0;
}

/* describe: {values} -> {count, mean, stddev} (population standard deviation). */
TASK(describe) {
    Input in;
    Acc a;
    int32_t rc = read_values(&in, "describe", 1, &a);
    if (rc != 0)
        return rc;
    free(in.buf);
    char cnt[40], mu[40], sd[40], out[160];
    fmt_num(cnt, sizeof cnt, a.n);
    fmt_num(mu, sizeof mu, a.mean);
    fmt_num(sd, sizeof sd, sqrt(a.m2 / a.n));
    int n = snprintf(out, sizeof out, "{\"count\":%s,\"mean\":%s,\"stddev\":%s}", cnt, mu, sd);
    extism_output(out, (uint64_t)n);
    return 0;
}

/* square: {x} -> square = x * x (for map). */
TASK(square) {
    Input in;
    double x;
    int32_t rc = read_x(&in, "square", "x", &x);
    if (rc != 0)
        return rc;
    free(in.buf);
    if (!isfinite(x * x))
        return extism_error("square: x * x overflows a double");
    return out_num(x * x);
}

/* is_even: {x} -> even: whether the integer x is even (for filter). */
TASK(is_even) {
    Input in;
    double x;
    int32_t rc = read_x(&in, "is_even", "x", &x);
    if (rc != 0)
        return rc;
    free(in.buf);
    if (x != floor(x))
        return extism_error("is_even: input 'x' must be an integer");
    const char *r = fmod(x, 2) == 0 ? "true" : "false";
    extism_output(r, strlen(r));
    return 0;
}
