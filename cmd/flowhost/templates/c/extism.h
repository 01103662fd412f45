/*
 * extism.h: the Extism guest ABI (flowhost task ABI v1, docs/abi.md) for C,
 * in one header, with a few helpers to read a task's input and set its
 * output or error.
 *
 * Every import comes from the module "extism:host/env". Offsets and
 * lengths are i64 and address the host's memory blocks, not the guest's
 * linear memory: data moves between the two with the load/store imports.
 *
 * A task is an exported function `int32_t name(void)`: 0 is success,
 * anything else a failure whose message was given to error_set.
 */
#ifndef FLOWHOST_EXTISM_H
#define FLOWHOST_EXTISM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXTISM_IMPORT(name) \
    __attribute__((import_module("extism:host/env"), import_name(name)))

/* Exports a task: `TASK(sum) { ... return 0; }` defines int32_t sum(void). */
#define TASK(name) \
    __attribute__((export_name(#name))) int32_t name(void); \
    int32_t name(void)

typedef uint64_t ExtismPointer;

/* The call's input. */
EXTISM_IMPORT("input_length") uint64_t extism_input_length(void);
EXTISM_IMPORT("input_load_u8") uint32_t extism_input_load_u8(uint64_t offset);
EXTISM_IMPORT("input_load_u64") uint64_t extism_input_load_u64(uint64_t offset);

/* Host memory blocks. */
EXTISM_IMPORT("alloc") ExtismPointer extism_alloc(uint64_t length);
EXTISM_IMPORT("free") void extism_free(ExtismPointer offset);
EXTISM_IMPORT("length") uint64_t extism_length(ExtismPointer offset);
EXTISM_IMPORT("length_unsafe") uint64_t extism_length_unsafe(ExtismPointer offset);
EXTISM_IMPORT("load_u8") uint32_t extism_load_u8(ExtismPointer offset);
EXTISM_IMPORT("load_u64") uint64_t extism_load_u64(ExtismPointer offset);
EXTISM_IMPORT("store_u8") void extism_store_u8(ExtismPointer offset, uint32_t value);
EXTISM_IMPORT("store_u64") void extism_store_u64(ExtismPointer offset, uint64_t value);

/* Results. */
EXTISM_IMPORT("output_set") void extism_output_set(ExtismPointer offset, uint64_t length);
EXTISM_IMPORT("error_set") void extism_error_set(ExtismPointer offset);

/* Config and variables (blocks; 0 means absent). */
EXTISM_IMPORT("config_get") ExtismPointer extism_config_get(ExtismPointer key);
EXTISM_IMPORT("var_get") ExtismPointer extism_var_get(ExtismPointer key);
EXTISM_IMPORT("var_set") void extism_var_set(ExtismPointer key, ExtismPointer value);

/* Logging: the argument is a block holding the message. */
EXTISM_IMPORT("log_info") void extism_log_info(ExtismPointer offset);
EXTISM_IMPORT("log_debug") void extism_log_debug(ExtismPointer offset);
EXTISM_IMPORT("log_warn") void extism_log_warn(ExtismPointer offset);
EXTISM_IMPORT("log_error") void extism_log_error(ExtismPointer offset);
EXTISM_IMPORT("log_trace") void extism_log_trace(ExtismPointer offset);
EXTISM_IMPORT("get_log_level") int32_t extism_get_log_level(void);

/*
 * Helpers. Only the imports they call end up in the module: the linker
 * drops the rest.
 */

/* Copies len bytes of guest memory into a new host block. */
static inline ExtismPointer extism_alloc_bytes(const void *data, uint64_t len) {
    const uint8_t *p = (const uint8_t *)data;
    ExtismPointer off = extism_alloc(len);
    uint64_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        extism_store_u64(off + i, w);
    }
    for (; i < len; i++)
        extism_store_u8(off + i, p[i]);
    return off;
}

/*
 * Reads the whole input into a new NUL-terminated buffer from malloc (the
 * caller frees it) and stores its length in *len. NULL when out of memory.
 */
static inline char *extism_input(uint64_t *len) {
    uint64_t n = extism_input_length();
    char *buf = (char *)malloc((size_t)n + 1);
    if (buf == NULL)
        return NULL;
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = extism_input_load_u64(i);
        memcpy(buf + i, &w, 8);
    }
    for (; i < n; i++)
        buf[i] = (char)extism_input_load_u8(i);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Sets the call's output. */
static inline void extism_output(const void *data, uint64_t len) {
    ExtismPointer off = extism_alloc_bytes(data, len);
    extism_output_set(off, len);
}

/* Sets the call's error message and returns 1, so a task can `return extism_error("...")`. */
static inline int32_t extism_error(const char *msg) {
    ExtismPointer off = extism_alloc_bytes(msg, strlen(msg));
    extism_error_set(off);
    return 1;
}

/* Logs msg at info level when the host's level lets it through. */
static inline void extism_log(const char *msg) {
    if (extism_get_log_level() > 2) /* 0 trace, 1 debug, 2 info, 3 warn, 4 error */
        return;
    ExtismPointer off = extism_alloc_bytes(msg, strlen(msg));
    extism_log_info(off); /* the host owns the block from here */
}

#endif
