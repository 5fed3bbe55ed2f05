/* Signed API requests (docs/PROTOCOL.md, "Private reads"): the bytes a
 * tenant signs, in domain SIG_REQUEST, to read its lease's private details.
 * Shared by the node that checks them and the CLI that makes them. */
#ifndef TALLY_REQUEST_H
#define TALLY_REQUEST_H

#include <stddef.h>

/* METHOD "\n" PATH "\n" TIMESTAMP "\n" NONCE; TALLY_E_TOOLONG if it does
 * not fit in cap bytes. */
int request_message(char *out, size_t cap, const char *method, const char *path,
		    const char *timestamp, const char *nonce);

#endif
