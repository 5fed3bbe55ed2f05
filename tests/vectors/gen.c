/* Prints the test vectors of docs/FORMATS.md in the form the document holds
 * them (and tests/unit/test_vectors.c parses), then the rows of the
 * settlement table: `make vectors`. */
#include <stdio.h>

#include "tests/vectors/examples.h"

#define HEX_PER_LINE 64

static void print_vector(const struct example_vector *v)
{
	char hex[2 * HEX_PER_LINE / 2 + 1];

	printf("%s (%zu bytes):\n\n<!-- vector: %s -->\n```\n", v->name, v->len, v->name);
	for (size_t off = 0; off < v->len; off += HEX_PER_LINE / 2) {
		size_t n = v->len - off < HEX_PER_LINE / 2 ? v->len - off : HEX_PER_LINE / 2;

		hex_encode(v->bytes + off, n, hex);
		printf("%s\n", hex);
	}
	printf("```\n\n");
}

int main(void)
{
	struct examples x;

	examples_build(&x);
	for (size_t i = 0; i < x.n; i++)
		print_vector(&x.v[i]);
	printf("Settlement table rows:\n\n");
	for (size_t i = 0; i < EXAMPLE_SETTLE_CASES; i++) {
		char row[512];

		example_settle_row(&x.settle[i], row, sizeof(row));
		printf("%s\n", row);
	}
	examples_free(&x);
	return 0;
}
