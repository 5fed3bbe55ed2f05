/* What every fuzz target of tests/fuzz/ shares.
 *
 * A target is one file, tests/fuzz/fuzz_NAME.c, defining
 *
 *     int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
 *
 * (and, when it needs a fixture, LLVMFuzzerInitialize), with its seed corpus
 * in tests/fuzz/corpus/NAME/. mk/fuzz.mk builds every such file and
 * scripts/fuzz.sh runs it; nothing else needs an edit. Besides "no crash, no
 * leak, no undefined behaviour" (ASan, UBSan and LeakSanitizer watch those),
 * a target checks a property of what the decoder accepted, through the
 * helpers below, which abort with a message naming it, so that libFuzzer
 * keeps the input as a crash. */
#ifndef TALLY_FUZZ_H
#define TALLY_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "lib/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with "property failed: <what>" when cond is false. */
#define fuzz_require(cond, ...) \
	do { \
		if (!(cond)) \
			fuzz_fail(__FILE__, __LINE__, __VA_ARGS__); \
	} while (0)

void fuzz_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

/* The canonical-form property: the encoder e (which this frees) wrote
 * exactly the n bytes at p that were decoded; what names the object. */
void fuzz_same_bytes(const char *what, const uint8_t *p, size_t n, struct enc *e);

/* A NUL-terminated copy of the input (malloc'd), for text parsers; the
 * input's own NUL bytes stay and end the text early, as they would for a
 * C string read from a file. */
char *fuzz_text(const uint8_t *data, size_t size);

/* A private scratch directory for the process (under $TMPDIR), removed
 * with everything in it when the process exits normally; scripts/fuzz.sh
 * gives each run its own TMPDIR and removes it too, for runs that end in
 * a crash. */
const char *fuzz_scratch_dir(void);

#endif

/* The strict rules restated from docs/FORMATS.md, independently of the
 * decoders, so a target can check that nothing was accepted that they
 * refuse. */
int fuzz_chain_id_ok(const char *s);     /* 1..48 bytes of [a-z0-9._-] */
int fuzz_image_ok(const char *s);        /* 1..64 bytes of [a-z0-9._-] */

struct lease_contract;
/* A contract's JSON form (when it has one: u64 fields up to 2^63 - 1) reads
 * back as the same contract. */
void fuzz_contract_json_props(const struct lease_contract *c);
/* A contract decoded from the binary form: its fields within the format's
 * rules, its encoding canonical, and fuzz_contract_json_props. */
void fuzz_contract_props(const struct lease_contract *c);
