/* Canonical decimal spellings of unsigned 64-bit integers, as the node reads
 * them from text it did not write (URL path segments, query arguments, header
 * values, JSON strings: docs/PROTOCOL.md, "Numbers"). */
#ifndef TALLY_LIB_DECIMAL_H
#define TALLY_LIB_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* Reads the n bytes at s as 1..20 decimal digits, with no sign, blank or
 * leading zero (other than "0" itself). Returns 0 with *out set;
 * TALLY_E_ENCODING for any other text; TALLY_E_RANGE for digits above
 * 2^64 - 1. *out is untouched on error. */
int decimal_u64(const char *s, size_t n, uint64_t *out);

#endif
