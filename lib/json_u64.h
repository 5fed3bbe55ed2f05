/* Unsigned 64-bit counters in JSON, exactly.
 *
 * jansson's integers are signed 64-bit, so a u64 above 2^63 - 1 cast to one
 * prints negative. tally's API writes a u64 as a JSON integer when it is at
 * most 2^63 - 1 (every amount: the genesis caps the supply there) and as a
 * decimal string otherwise (docs/PROTOCOL.md, "Numbers"); readers accept
 * both spellings. */
#ifndef TALLY_LIB_JSON_U64_H
#define TALLY_LIB_JSON_U64_H

#include <jansson.h>
#include <stdint.h>

/* A new reference: an integer, or a decimal string above INT64_MAX; NULL
 * when out of memory. */
json_t *json_u64(uint64_t v);

/* Reads v written by json_u64: a non-negative integer, or a string of 1..20
 * decimal digits (no sign, no leading zero unless "0") within 2^64 - 1.
 * Returns 0, or -1 for anything else (v is then untouched). */
int json_u64_get(const json_t *j, uint64_t *v);

#endif
